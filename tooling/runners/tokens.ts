import {
  isBasicExpression,
  isBoolean,
  isMapping,
  isNumber,
  isSequence,
  isString,
} from '@actions/workflow-parser';
import type { TemplateToken } from '@actions/workflow-parser/templates/tokens/template-token';
import { type Contexts, evaluateExpression, type StatusFunctions } from './expressions.ts';

/** A template token of the parsed workflow as a JS value, with every expression evaluated. */
export function tokenValue(
  token: TemplateToken | undefined,
  contexts: Contexts,
  status?: StatusFunctions,
): unknown {
  if (!token) return undefined;
  if (isBasicExpression(token)) return evaluateExpression(token.expression, contexts, status);
  if (isString(token)) return token.value;
  if (isBoolean(token)) return token.value;
  if (isNumber(token)) return token.value;
  if (isSequence(token)) {
    const out: unknown[] = [];
    for (let i = 0; i < token.count; i++) out.push(tokenValue(token.get(i), contexts, status));
    return out;
  }
  if (isMapping(token)) {
    const out: Record<string, unknown> = {};
    for (const { key, value } of token)
      out[String(tokenValue(key, contexts, status))] = tokenValue(value, contexts, status);
    return out;
  }
  return null;
}
