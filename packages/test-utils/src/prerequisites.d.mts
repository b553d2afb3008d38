/** What the tests may miss on a machine. */
export type Prerequisite = 'redis-server' | 'chromium';

export type Environment = Readonly<Record<string, string | undefined>>;

export function which(command: string, pathEnv?: string): string | undefined;
export function findRedisServer(env?: Environment): string | undefined;
export function findChromium(env?: Environment): { path?: string; error?: string };
export function packageManager(env?: Environment): 'apt' | 'brew' | 'other';
export function debianPackages(missing: readonly Prerequisite[]): string[];
export function missingMessage(missing: readonly Prerequisite[], env?: Environment): string;
export function versionOf(path: string): string;
