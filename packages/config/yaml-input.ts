import { parse as parseYaml } from 'yaml';
import { InputError } from '../core/index.ts';
import { field, type InputField, type Options, type Present } from './inputs.ts';

/**
 * A YAML (or JSON, which is YAML) document input; `validate` turns it into the typed value. In a
 * module of its own so that actions without YAML inputs do not load the YAML parser.
 */
export function yamlInput<T, const O extends Options<T> = Options<T>>(
  validate: (doc: unknown, name: string) => T,
  options: O = {} as O,
): InputField<T, Present<O>> {
  const accepted = options.accepted ?? 'a YAML or JSON document';
  return field(
    'yaml',
    accepted,
    (raw, name) => {
      let doc: unknown;
      try {
        doc = parseYaml(raw, { prettyErrors: true });
      } catch (error) {
        const detail = (error as Error).message.split('\n')[0];
        throw new InputError(name, `is not valid YAML (${detail})`, accepted);
      }
      return validate(doc, name);
    },
    options,
  );
}
