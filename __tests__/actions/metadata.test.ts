import { existsSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { describe, expect, test } from '@jest/globals';
import type { Schema } from '../../packages/config/index.ts';
import { parseDuration } from '../../packages/core/index.ts';
import { actionDirs, updatedReadme } from '../../scripts/action-docs.ts';
import { readActionDefinition } from '../../tooling/runners/action-runner.ts';
import { lintActionMetadata } from '../../tooling/test-support/workflow-lint.ts';

const dirs = actionDirs();

describe.each(dirs.map((d) => [basename(d), d]))('%s/action.yml', (name, dir) => {
  const def = readActionDefinition(dir);

  test("passes GitHub's action schema", () => {
    expect(lintActionMetadata(join(dir, 'action.yml'))).toEqual([]);
  });

  test('runs on node24 from a built bundle in dist/', () => {
    expect(def.runs.using).toBe('node24');
    expect(def.runs.main).toBe(`../dist/${name}.js`);
    expect(existsSync(resolve(dir, def.runs.main))).toBe(true);
  });

  test('every input and output has a description, and the branding is set', () => {
    for (const [input, spec] of Object.entries(def.inputs))
      expect([input, (spec.description ?? '').length > 10]).toEqual([input, true]);
    for (const [output, spec] of Object.entries(def.outputs))
      expect([output, (spec.description ?? '').length > 10]).toEqual([output, true]);
    expect(def).toHaveProperty('branding.icon');
  });

  test('declares exactly the inputs its schema reads, with the same defaults and required flags', async () => {
    const { schema } = (await import(`../../actions/${name}.ts`)) as { schema: Schema };
    expect(Object.keys(def.inputs).sort()).toEqual(Object.keys(schema).sort());
    for (const [input, field] of Object.entries(schema)) {
      const yml = def.inputs[input]!;
      const ymlDefault =
        yml.default === undefined || yml.default === '' || /\$\{\{/.test(String(yml.default))
          ? undefined
          : String(yml.default);
      expect([input, field.defaultValue]).toEqual([input, ymlDefault]);
      expect([input, Boolean(yml.required)]).toEqual([input, field.required]);
    }
  });

  test('every duration input documents the maximum its schema accepts', async () => {
    const { schema } = (await import(`../../actions/${name}.ts`)) as { schema: Schema };
    for (const [input, field] of Object.entries(schema)) {
      if (field.kind !== 'duration') continue;
      const stated = /At most (\S+?)\./.exec(def.inputs[input]?.description ?? '')?.[1];
      expect([input, stated && parseDuration(stated, input, { maxMs: Number.MAX_SAFE_INTEGER })]).toEqual([
        input,
        field.maxMs,
      ]);
    }
  });

  test('its README documents the inputs and outputs exactly as action.yml declares them', () => {
    const { current, expected } = updatedReadme(dir);
    expect(expected).toBeDefined();
    expect(current).toBe(expected);
  });
});
