import { InputError } from '../core/index.ts';

/** A numeric condition on a measured value: `< 0.01`, `>= 0.99`, `== 1`, `between 0.2 and 0.8`. */
export type Condition =
  | { op: '<' | '<=' | '>' | '>=' | '==' | '!='; value: number; text: string }
  | { op: 'between'; low: number; high: number; text: string };

const CONDITION_FORM = "a comparison such as '< 0.01', '>= 0.99', '== 1' or 'between 0.2 and 0.8'";

export function parseCondition(raw: string, field: string): Condition {
  const text = raw.trim();
  const between = /^between\s+(-?[\d.]+(?:e-?\d+)?)\s+and\s+(-?[\d.]+(?:e-?\d+)?)$/i.exec(text);
  if (between) {
    const low = Number(between[1]);
    const high = Number(between[2]);
    if (Number.isFinite(low) && Number.isFinite(high) && low <= high)
      return { op: 'between', low, high, text };
  }
  const cmp = /^(<=|>=|==|!=|<|>)\s*(-?[\d.]+(?:e-?\d+)?)$/.exec(text);
  if (cmp && Number.isFinite(Number(cmp[2]))) {
    return { op: cmp[1] as '<', value: Number(cmp[2]), text };
  }
  throw new InputError(field, `has ${JSON.stringify(raw)}, which is not a condition`, CONDITION_FORM);
}

export function holds(condition: Condition, value: number): boolean {
  switch (condition.op) {
    case '<':
      return value < condition.value;
    case '<=':
      return value <= condition.value;
    case '>':
      return value > condition.value;
    case '>=':
      return value >= condition.value;
    case '==':
      return value === condition.value;
    case '!=':
      return value !== condition.value;
    case 'between':
      return value >= condition.low && value <= condition.high;
  }
}
