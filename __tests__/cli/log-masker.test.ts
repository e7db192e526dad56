import { describe, expect, test } from '@jest/globals';
import { LogMasker } from '../../tooling/runners/log-masker.ts';

// What `pipeline rehearse --verbose` prints of the steps' own output: the values of ::add-mask::
// commands are learned and hidden, never printed, however the output is cut into chunks.
describe('LogMasker (rehearse --verbose)', () => {
  const TOKEN = 'kube-token-0123456789abcdef';
  const URL = 'postgres://app:s3cr3t%21@db:5432/shop';
  const output = [
    `::add-mask::${TOKEN}`,
    `::add-mask::${URL.replace(/%/g, '%25')}`,
    `connecting with ${TOKEN}`,
    `database ${URL}`,
    'done',
  ].join('\n');

  test.each([1, 3, 7, 64, output.length])('cut into chunks of %i characters', (size) => {
    const masker = new LogMasker();
    const shown: string[] = [];
    for (let i = 0; i < output.length; i += size)
      shown.push(...masker.push('job', output.slice(i, i + size)));
    shown.push(...masker.flush('job'));
    expect(shown).toEqual(['connecting with ***', 'database ***', 'done']);
    expect(shown.join('\n')).not.toContain('add-mask');
  });

  test('masks learned in one job hide the value in every later line, and in step errors', () => {
    const masker = new LogMasker();
    expect(masker.push('deploy', `::add-mask::${TOKEN}\n`)).toEqual([]);
    expect(masker.push('smoke', `token=${TOKEN}\n`)).toEqual(['token=***']);
    expect(masker.redact(`Input 'kubeconfig' rejected ${TOKEN}`)).toBe("Input 'kubeconfig' rejected ***");
  });
});
