import { data, Evaluator, Lexer, Parser } from '@actions/expressions';

/**
 * GitHub Actions expressions, evaluated with GitHub's own evaluator (@actions/expressions). The
 * status functions (success, failure, always, cancelled) and hashFiles are ours, since they
 * depend on the run.
 */
export interface StatusFunctions {
  success(): boolean;
  failure(): boolean;
  cancelled(): boolean;
}

export type Contexts = Record<string, unknown>;

const STATUS_FUNCTIONS = ['success', 'failure', 'always', 'cancelled'];

function toData(value: unknown): data.ExpressionData {
  return JSON.parse(JSON.stringify(value ?? null), data.reviver) as data.ExpressionData;
}

function fromData(value: data.ExpressionData): unknown {
  return JSON.parse(JSON.stringify(value, data.replacer)) as unknown;
}

class ExpressionFailure extends Error {}

export function evaluateExpression(
  expression: string,
  contexts: Contexts,
  status?: StatusFunctions,
): unknown {
  const lexed = new Lexer(expression).lex();
  const functionInfo = [
    ...STATUS_FUNCTIONS.map((name) => ({ name, minArgs: 0, maxArgs: 0 })),
    { name: 'hashFiles', minArgs: 1, maxArgs: 255 },
  ];
  let expr: ReturnType<Parser['parse']>;
  try {
    expr = new Parser(lexed.tokens, Object.keys(contexts), functionInfo).parse();
  } catch (error) {
    throw new ExpressionFailure(`cannot parse \${{ ${expression} }}: ${(error as Error).message}`);
  }
  const fn = (name: string, call: (...args: data.ExpressionData[]) => data.ExpressionData) =>
    [name.toLowerCase(), { name, minArgs: 0, maxArgs: 255, call }] as const;
  const s = status ?? { success: () => true, failure: () => false, cancelled: () => false };
  const functions = new Map([
    fn('success', () => new data.BooleanData(s.success())),
    fn('failure', () => new data.BooleanData(s.failure())),
    fn('cancelled', () => new data.BooleanData(s.cancelled())),
    fn('always', () => new data.BooleanData(true)),
    // The rehearsal has no build cache to key: a stable value is enough for cache keys.
    fn(
      'hashFiles',
      (...args) => new data.StringData(`rehearsal-${args.map((a) => a.coerceString()).join('|').length}`),
    ),
  ]);
  try {
    return fromData(new Evaluator(expr, toData(contexts) as data.Dictionary, functions).evaluate());
  } catch (error) {
    throw new ExpressionFailure(`cannot evaluate \${{ ${expression} }}: ${(error as Error).message}`);
  }
}

/** GitHub's truthiness for `if:` results. */
export function truthy(value: unknown): boolean {
  if (value === null || value === undefined || value === false || value === 0 || value === '') return false;
  if (typeof value === 'number' && Number.isNaN(value)) return false;
  return true;
}

/** How GitHub turns an expression result into text (`with:` values, `run:` scripts). */
export function asText(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'string') return value;
  if (typeof value === 'boolean' || typeof value === 'number') return String(value);
  return JSON.stringify(value, null, 2);
}

/** `${{ }}` inside a plain string (raw YAML values the converter does not type, like workflow_call outputs). */
export function interpolate(text: string, contexts: Contexts, status?: StatusFunctions): unknown {
  const whole = /^\s*\$\{\{([\s\S]*?)\}\}\s*$/.exec(text);
  if (whole) return evaluateExpression(whole[1]!.trim(), contexts, status);
  return text.replace(/\$\{\{([\s\S]*?)\}\}/g, (_m, expr: string) =>
    asText(evaluateExpression(expr.trim(), contexts, status)),
  );
}
