import type { Random } from './random.js';

/** An agent under test, as the simulation plays it. */
export interface AgentProfile {
  readonly name: string;
  readonly model: string;
  /** Mean score of a run, 0-1. */
  readonly skill: number;
  /** Multiplies step durations (higher is slower). */
  readonly pace: number;
}

/** The agents the simulated runner evaluates. */
export const AGENTS: readonly AgentProfile[] = [
  { name: 'gpt-4', model: 'gpt-4-0613', skill: 0.8, pace: 1 },
  { name: 'claude-3-opus', model: 'claude-3-opus-20240229', skill: 0.84, pace: 1.15 },
  { name: 'gemini', model: 'gemini-1.5-pro', skill: 0.76, pace: 0.9 },
];

/** A kind of suite: its name, the prefix of its test ids, its tasks and the tools its agent uses. */
export interface SuiteTemplate {
  readonly name: string;
  readonly prefix: string;
  readonly tasks: readonly string[];
  readonly tools: readonly string[];
}

export const SUITES: readonly SuiteTemplate[] = [
  {
    name: 'Auth Tests',
    prefix: 'auth',
    tasks: [
      'Login Test',
      'Logout Test',
      'Password Reset',
      'MFA Challenge',
      'Session Expiry',
      'OAuth Callback',
      'Account Lockout',
      'Remember Me',
      'Email Verification',
      'Role Escalation Guard',
    ],
    tools: ['http_request', 'read_inbox', 'browser_click', 'browser_fill'],
  },
  {
    name: 'Customer Support',
    prefix: 'support',
    tasks: [
      'Refund Request',
      'Order Status Lookup',
      'Address Change',
      'Angry Customer De-escalation',
      'Warranty Claim',
      'Subscription Cancel',
      'Shipping Delay Apology',
      'Duplicate Charge',
      'Product Recommendation',
      'Escalate To Human',
    ],
    tools: ['search_orders', 'lookup_customer', 'issue_refund', 'send_email', 'search_kb'],
  },
  {
    name: 'Data Analysis',
    prefix: 'data',
    tasks: [
      'Monthly Revenue Summary',
      'Churn Cohort Query',
      'Outlier Detection',
      'CSV Cleanup',
      'Pivot By Region',
      'Year Over Year Growth',
      'Funnel Drop-off',
      'Forecast Next Quarter',
      'Join Two Tables',
      'Chart Caption',
    ],
    tools: ['sql_query', 'python_exec', 'read_file', 'plot_chart'],
  },
  {
    name: 'Code Review',
    prefix: 'code',
    tasks: [
      'Find Off-by-one',
      'Spot SQL Injection',
      'Suggest Rename',
      'Race Condition Hunt',
      'Missing Null Check',
      'Dead Code Removal',
      'Test Coverage Gap',
      'Dependency Upgrade Risk',
      'Review Migration',
      'Explain Diff',
    ],
    tools: ['read_file', 'grep', 'run_tests', 'git_diff'],
  },
  {
    name: 'Web Research',
    prefix: 'research',
    tasks: [
      'Compare Two Laptops',
      'Find Conference Dates',
      'Summarize Paper',
      'Verify Quote Source',
      'Track Price History',
      'Local Regulations Lookup',
      'Competitor Feature Matrix',
      'Travel Itinerary',
      'Recipe Scaling',
      'Citation Formatting',
    ],
    tools: ['web_search', 'fetch_page', 'extract_table', 'calculator'],
  },
];

/** Variants that make a task into a further test when a suite has more tests than tasks. */
const VARIANTS = ['', ' (edge case)', ' (large input)', ' (non-English)'];

/** One test of a planned suite execution. */
export interface PlannedTest {
  readonly testId: string;
  readonly testName: string;
  readonly totalRuns: number;
}

/** A suite execution to simulate: its template, agent and tests. */
export interface PlannedSuite {
  readonly template: SuiteTemplate;
  readonly agent: AgentProfile;
  readonly tests: readonly PlannedTest[];
}

/** Plans a suite of `minTests`-`maxTests` tests, each with 2-5 runs. */
export function planSuite(random: Random, minTests = 5, maxTests = 20): PlannedSuite {
  const template = random.pick(SUITES);
  const agent = random.pick(AGENTS);
  const count = random.int(minTests, maxTests);
  const offset = random.int(0, template.tasks.length - 1);
  const tests: PlannedTest[] = [];
  for (let i = 0; i < count; i++) {
    const task = template.tasks[(offset + i) % template.tasks.length]!;
    const variant = VARIANTS[Math.floor(i / template.tasks.length) % VARIANTS.length]!;
    const number =
      ((offset + i) % template.tasks.length) +
      1 +
      template.tasks.length * Math.floor(i / template.tasks.length);
    tests.push({
      testId: `${template.prefix}-${String(number).padStart(3, '0')}`,
      testName: `${task}${variant}`,
      totalRuns: random.int(2, 5),
    });
  }
  return { template, agent, tests };
}

/** Words for simulated reasoning traces. */
export const THOUGHTS = [
  'The user wants the most recent record; I should sort by date before answering.',
  'That tool result is incomplete, so I will query again with a narrower filter.',
  'Two sources disagree; the official one takes precedence.',
  'The request is ambiguous. I will state my assumption and continue.',
  'I have enough information to answer without another tool call.',
  'The error suggests a permissions problem rather than missing data.',
];
