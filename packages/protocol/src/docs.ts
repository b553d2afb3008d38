// Internal: renders the tables of docs/PROTOCOL.md from the constants, so the
// document cannot drift from the code. Used by `pnpm --filter @atp/ws-protocol
// generate` (through dist) and by the test that checks the document. Not part
// of the public API (not exported from index.ts).
import { z } from 'zod';
import {
  CloseCode,
  closeCodeDescriptions,
  ErrorCode,
  errorCodeDescriptions,
  isFatalCloseCode,
} from './codes.js';
import { MAX_FILTER_VALUES } from './filters.js';
import {
  ConnectedMessageSchema,
  DeltaUpdateMessageSchema,
  ErrorMessageSchema,
  EventMessageSchema,
  GetResourceMessageSchema,
  EventTypeSchema,
  LogEntryMessageSchema,
  PongMessageSchema,
  ResourceMessageSchema,
  ResumedMessageSchema,
  ResumeMessageSchema,
  SubscribedMessageSchema,
  SubscribeMessageSchema,
  SuiteCompletedMessageSchema,
  SuiteProgressMessageSchema,
  TestCompletedMessageSchema,
  TestProgressMessageSchema,
  UnsubscribedMessageSchema,
  UnsubscribeMessageSchema,
} from './messages.js';
import {
  ALL_EVENTS_TOPIC,
  describeTopic,
  EVENT_TOPIC_PREFIX,
  FILTER_KEYS,
  type FilterValueKind,
  LOG_LEVELS,
  TOPICS,
  type TopicDefinition,
} from './topics.js';

const code = (text: string | number): string => `\`${text}\``;

/** A table cell: pipes would end the cell early. */
const cell = (text: string): string => text.replaceAll('|', '\\|');

/** A Markdown table with padded columns, as Biome's Markdown formatter writes it. */
function table(header: string[], rows: string[][]): string {
  const cells = [header, ...rows].map((row) => row.map(cell));
  const length = (text: string) => [...text].length;
  const widths = header.map((_, i) => Math.max(3, ...cells.map((row) => length(row[i] ?? ''))));
  const line = (row: string[]) =>
    `| ${row.map((text, i) => text + ' '.repeat((widths[i] ?? 0) - length(text))).join(' | ')} |`;
  const [head = [], ...body] = cells;
  return [line(head), line(widths.map((width) => '-'.repeat(width))), ...body.map(line)].join('\n');
}

const NAME = 'name: 1-64 of `A-Z a-z 0-9 _ . -`';

const valueKinds: Record<FilterValueKind, string> = {
  integer: 'integer ≥ 0',
  string: 'non-empty string',
  name: NAME,
  level: `one of ${LOG_LEVELS.map(code).join(', ')}`,
};

function topicRow(shownAs: string, definition: TopicDefinition, delivers: string): string[] {
  const keys = definition.filterKeys.map((key) => `${code(key)} (${valueKinds[FILTER_KEYS[key]]})`);
  return [code(shownAs), delivers, keys.join(', ') || '(none)'];
}

/** The topics, what each delivers and its filter keys with the kind of value each takes. */
export function renderTopicTable(): string {
  const rows: string[][] = [];
  for (const definition of Object.values(TOPICS)) {
    if (definition.topic === ALL_EVENTS_TOPIC) {
      rows.push(topicRow(definition.topic, definition, `every ${code(definition.delivers)}`));
      // `events:<event_type>` is open-ended: describe it through one of its members.
      const byType = describeTopic(`${EVENT_TOPIC_PREFIX}tool_call`);
      if (!byType) throw new Error('events:tool_call must be a topic');
      const delivers = `${code(byType.delivers)} whose ${code('event_type')} is ${code('<event_type>')}`;
      rows.push(topicRow(`${EVENT_TOPIC_PREFIX}<event_type>`, byType, delivers));
    } else {
      rows.push(topicRow(definition.topic, definition, code(definition.delivers)));
    }
  }
  return [
    table(['Topic', 'Delivers', 'Filter keys (value)'], rows),
    '',
    `Any filter value may also be an array of 1 to ${MAX_FILTER_VALUES} such values, meaning "any of these".`,
  ].join('\n');
}

/** Every error code of `error { code, message }` with its meaning. */
export function renderErrorCodeTable(): string {
  const rows = Object.entries(ErrorCode).map(([name, value]) => [
    code(value),
    code(`ErrorCode.${name}`),
    errorCodeDescriptions[value],
  ]);
  return table(['Code', 'Constant', 'Meaning'], rows);
}

/** Every close code with its meaning and whether a client may reconnect after it. */
export function renderCloseCodeTable(): string {
  const rows = Object.entries(CloseCode).map(([name, value]) => [
    code(value),
    code(`CloseCode.${name}`),
    closeCodeDescriptions[value],
    isFatalCloseCode(value) ? '`true`: never reconnect automatically' : '`false`: reconnect with backoff',
  ]);
  return table(['Code', 'Constant', 'Meaning', '`isFatalCloseCode`'], rows);
}

/** The part of JSON Schema that zod emits for the payloads of this protocol. */
interface JsonSchema {
  type?: string;
  const?: unknown;
  enum?: unknown[];
  anyOf?: JsonSchema[];
  minimum?: number;
  exclusiveMinimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  maxItems?: number;
  format?: string;
  pattern?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
}

/** The pattern of names (event types, resource types) in JSON Schema. */
const namePattern = (z.toJSONSchema(EventTypeSchema) as JsonSchema).pattern;

function describeNumber(schema: JsonSchema): string {
  const { type = 'number', minimum, exclusiveMinimum, maximum } = schema;
  const max = maximum === Number.MAX_SAFE_INTEGER ? undefined : maximum;
  if (minimum !== undefined && max !== undefined) return `${type} from ${minimum} to ${max}`;
  if (minimum !== undefined) return `${type} ≥ ${minimum}`;
  if (exclusiveMinimum !== undefined) return `${type} > ${exclusiveMinimum}`;
  return type;
}

function describeString(schema: JsonSchema): string {
  if (schema.format === 'date-time') return 'ISO 8601 date-time with `Z` or an offset';
  if (schema.pattern === namePattern) return NAME;
  if (schema.pattern) return `string matching ${code(schema.pattern)}`;
  const { minLength = 0, maxLength } = schema;
  if (maxLength !== undefined) return `string of ${minLength} to ${maxLength} characters`;
  return minLength > 0 ? 'non-empty string' : 'string';
}

/** A field's type in words, e.g. `integer ≥ 0` or `one of "debug", "info"`. */
function describeSchema(schema: JsonSchema): string {
  if (schema.anyOf) return schema.anyOf.map(describeSchema).join(', or ');
  if (schema.const !== undefined) return code(JSON.stringify(schema.const));
  if (schema.enum) return `one of ${schema.enum.map((v) => code(JSON.stringify(v))).join(', ')}`;
  switch (schema.type) {
    case undefined:
      return 'any JSON value';
    case 'integer':
    case 'number':
      return describeNumber(schema);
    case 'string':
      return describeString(schema);
    case 'boolean':
      return 'boolean';
    case 'null':
      return code('null');
    case 'array': {
      const most = schema.maxItems === undefined ? '' : ` (at most ${schema.maxItems})`;
      return `array${most} of ${schema.items ? describeSchema(schema.items) : 'any JSON value'}`;
    }
    case 'object': {
      if (!schema.properties) return 'object';
      const required = new Set(schema.required);
      const keys = Object.keys(schema.properties).map((key) => (required.has(key) ? key : `${key}?`));
      return `object ${code(`{ ${keys.join(', ')} }`)}`;
    }
    default:
      return code(JSON.stringify(schema));
  }
}

/** A message schema's payload fields: name, type in words, required or not. */
function renderPayloadFields(message: z.ZodType): string {
  const payload = (z.toJSONSchema(message, { io: 'input' }) as JsonSchema).properties?.payload;
  const required = new Set(payload?.required);
  const rows = Object.entries(payload?.properties ?? {}).map(([name, schema]) => [
    code(name),
    describeSchema(schema),
    required.has(name) ? 'yes' : 'no',
  ]);
  return table(['Field', 'Type', 'Required'], rows);
}

/** Messages whose payload fields are listed in the document, by `type`. */
const payloadTables = {
  subscribe: SubscribeMessageSchema,
  unsubscribe: UnsubscribeMessageSchema,
  resume: ResumeMessageSchema,
  get_resource: GetResourceMessageSchema,
  connected: ConnectedMessageSchema,
  subscribed: SubscribedMessageSchema,
  unsubscribed: UnsubscribedMessageSchema,
  pong: PongMessageSchema,
  resumed: ResumedMessageSchema,
  error: ErrorMessageSchema,
  resource: ResourceMessageSchema,
  test_progress: TestProgressMessageSchema,
  test_completed: TestCompletedMessageSchema,
  suite_progress: SuiteProgressMessageSchema,
  suite_completed: SuiteCompletedMessageSchema,
  log_entry: LogEntryMessageSchema,
  event: EventMessageSchema,
  delta_update: DeltaUpdateMessageSchema,
} as const;

type FieldsSectionName = `fields:${keyof typeof payloadTables}`;

/** Name of a generated section. */
export type GeneratedSectionName = 'topics' | 'error-codes' | 'close-codes' | FieldsSectionName;

/** The generated sections of docs/PROTOCOL.md, by the name in their markers. */
export const generatedSections: Record<GeneratedSectionName, () => string> = {
  topics: renderTopicTable,
  'error-codes': renderErrorCodeTable,
  'close-codes': renderCloseCodeTable,
  ...(Object.fromEntries(
    Object.entries(payloadTables).map(([type, schema]) => [
      `fields:${type}`,
      () => renderPayloadFields(schema),
    ]),
  ) as Record<FieldsSectionName, () => string>),
};

/** A generated section with its markers: `<!-- generated:name -->` … `<!-- /generated:name -->`. */
export function renderGeneratedSection(name: GeneratedSectionName): string {
  return `<!-- generated:${name} -->\n${generatedSections[name]()}\n<!-- /generated:${name} -->`;
}

/**
 * The document with each generated section replaced by its current rendering.
 * Throws when a section's markers are missing or appear more than once.
 */
export function updateGeneratedSections(markdown: string): string {
  let out = markdown;
  for (const name of Object.keys(generatedSections) as GeneratedSectionName[]) {
    const start = `<!-- generated:${name} -->`;
    const end = `<!-- /generated:${name} -->`;
    const from = out.indexOf(start);
    const to = out.indexOf(end);
    if (from < 0 || to < from || out.indexOf(start, from + 1) >= 0 || out.indexOf(end, to + 1) >= 0) {
      throw new Error(`docs/PROTOCOL.md must contain ${start} … ${end} exactly once`);
    }
    out = out.slice(0, from) + renderGeneratedSection(name) + out.slice(to + end.length);
  }
  return out;
}
