/**
 * Just enough Kubernetes protobuf to read what `kubectl create <namespace|configmap|secret|
 * serviceaccount|deployment|service>` and `kubectl expose` send: typed clients post protobuf, and
 * client-go does not fall back to JSON. Responses stay JSON, which kubectl accepts. Field numbers
 * follow k8s.io/api generated.proto; fields not listed are skipped.
 */
import { badRequest } from './status.ts';
import type { JsonObject } from './types.ts';

type Kind = 'string' | 'int' | 'bool' | 'bytes' | 'strings' | 'map' | 'bytesMap' | 'intOrString';
type Field = [name: string, kind: Kind] | [name: string, 'msg' | 'msgs', Schema];
type Schema = Record<number, Field>;

const LABEL_SELECTOR: Schema = { 1: ['matchLabels', 'map'] };
const OBJECT_META: Schema = {
  1: ['name', 'string'],
  2: ['generateName', 'string'],
  3: ['namespace', 'string'],
  11: ['labels', 'map'],
  12: ['annotations', 'map'],
  14: ['finalizers', 'strings'],
};
const CONTAINER_PORT: Schema = {
  1: ['name', 'string'],
  3: ['containerPort', 'int'],
  4: ['protocol', 'string'],
};
const ENV_VAR: Schema = { 1: ['name', 'string'], 2: ['value', 'string'] };
const CONTAINER: Schema = {
  1: ['name', 'string'],
  2: ['image', 'string'],
  3: ['command', 'strings'],
  4: ['args', 'strings'],
  6: ['ports', 'msgs', CONTAINER_PORT],
  7: ['env', 'msgs', ENV_VAR],
  14: ['imagePullPolicy', 'string'],
};
const POD_SPEC: Schema = { 2: ['containers', 'msgs', CONTAINER], 3: ['restartPolicy', 'string'] };
const POD_TEMPLATE: Schema = { 1: ['metadata', 'msg', OBJECT_META], 2: ['spec', 'msg', POD_SPEC] };
const SERVICE_PORT: Schema = {
  1: ['name', 'string'],
  2: ['protocol', 'string'],
  3: ['port', 'int'],
  4: ['targetPort', 'intOrString'],
  5: ['nodePort', 'int'],
};

const POLICY_RULE: Schema = {
  1: ['verbs', 'strings'],
  2: ['apiGroups', 'strings'],
  3: ['resources', 'strings'],
  4: ['resourceNames', 'strings'],
  5: ['nonResourceURLs', 'strings'],
};
const SUBJECT: Schema = {
  1: ['kind', 'string'],
  2: ['apiGroup', 'string'],
  3: ['name', 'string'],
  4: ['namespace', 'string'],
};
const ROLE_REF: Schema = { 1: ['apiGroup', 'string'], 2: ['kind', 'string'], 3: ['name', 'string'] };
const ROLE: Schema = { 1: ['metadata', 'msg', OBJECT_META], 2: ['rules', 'msgs', POLICY_RULE] };
const BINDING: Schema = {
  1: ['metadata', 'msg', OBJECT_META],
  2: ['subjects', 'msgs', SUBJECT],
  3: ['roleRef', 'msg', ROLE_REF],
};

const RESOURCE_ATTRIBUTES: Schema = {
  1: ['namespace', 'string'],
  2: ['verb', 'string'],
  3: ['group', 'string'],
  4: ['version', 'string'],
  5: ['resource', 'string'],
  6: ['subresource', 'string'],
  7: ['name', 'string'],
};

const SCHEMAS: Record<string, Schema> = {
  TokenRequest: {
    1: ['metadata', 'msg', OBJECT_META],
    2: [
      'spec',
      'msg',
      {
        1: ['audiences', 'strings'],
        2: ['expirationSeconds', 'int'],
        3: [
          'boundObjectRef',
          'msg',
          { 1: ['kind', 'string'], 2: ['apiVersion', 'string'], 3: ['name', 'string'], 4: ['uid', 'string'] },
        ],
      },
    ],
  },
  SelfSubjectRulesReview: {
    1: ['metadata', 'msg', OBJECT_META],
    2: ['spec', 'msg', { 1: ['namespace', 'string'] }],
  },
  SelfSubjectAccessReview: {
    1: ['metadata', 'msg', OBJECT_META],
    2: [
      'spec',
      'msg',
      {
        1: ['resourceAttributes', 'msg', RESOURCE_ATTRIBUTES],
        2: ['nonResourceAttributes', 'msg', { 1: ['path', 'string'], 2: ['verb', 'string'] }],
      },
    ],
  },
  Role: ROLE,
  ClusterRole: ROLE,
  RoleBinding: BINDING,
  ClusterRoleBinding: BINDING,
  Namespace: { 1: ['metadata', 'msg', OBJECT_META] },
  ConfigMap: {
    1: ['metadata', 'msg', OBJECT_META],
    2: ['data', 'map'],
    3: ['binaryData', 'bytesMap'],
    4: ['immutable', 'bool'],
  },
  Secret: {
    1: ['metadata', 'msg', OBJECT_META],
    2: ['data', 'bytesMap'],
    3: ['type', 'string'],
    4: ['stringData', 'map'],
    5: ['immutable', 'bool'],
  },
  ServiceAccount: { 1: ['metadata', 'msg', OBJECT_META] },
  Deployment: {
    1: ['metadata', 'msg', OBJECT_META],
    2: [
      'spec',
      'msg',
      {
        1: ['replicas', 'int'],
        2: ['selector', 'msg', LABEL_SELECTOR],
        3: ['template', 'msg', POD_TEMPLATE],
      },
    ],
  },
  Service: {
    1: ['metadata', 'msg', OBJECT_META],
    2: [
      'spec',
      'msg',
      {
        1: ['ports', 'msgs', SERVICE_PORT],
        2: ['selector', 'map'],
        3: ['clusterIP', 'string'],
        4: ['type', 'string'],
      },
    ],
  },
};

class Reader {
  pos = 0;
  readonly buf: Buffer;
  constructor(buf: Buffer) {
    this.buf = buf;
  }
  get done(): boolean {
    return this.pos >= this.buf.length;
  }
  varint(): number {
    let result = 0;
    let shift = 0;
    for (;;) {
      if (this.pos >= this.buf.length) throw badRequest('truncated protobuf');
      const b = this.buf[this.pos++]!;
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return result;
      shift += 7;
    }
  }
  bytes(): Buffer {
    const n = this.varint();
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.pos += 8;
    else if (wire === 2) this.bytes();
    else if (wire === 5) this.pos += 4;
    else throw badRequest(`unsupported protobuf wire type ${wire}`);
  }
}

function entries(buf: Buffer, asBytes: boolean): [string, string] {
  const r = new Reader(buf);
  let key = '';
  let value = '';
  while (!r.done) {
    const tag = r.varint();
    if (tag >> 3 === 1) key = r.bytes().toString('utf8');
    else if (tag >> 3 === 2) {
      const raw = r.bytes();
      value = asBytes ? raw.toString('base64') : raw.toString('utf8');
    } else r.skip(tag & 7);
  }
  return [key, value];
}

function decode(buf: Buffer, schema: Schema): JsonObject {
  const r = new Reader(buf);
  const out: JsonObject = {};
  while (!r.done) {
    const tag = r.varint();
    const field = schema[tag >> 3];
    if (!field) {
      r.skip(tag & 7);
      continue;
    }
    const [name, kind] = field;
    switch (kind) {
      case 'string': {
        const s = r.bytes().toString('utf8');
        if (s) out[name] = s;
        break;
      }
      case 'int':
        out[name] = r.varint();
        break;
      case 'bool':
        out[name] = r.varint() !== 0;
        break;
      case 'bytes':
        out[name] = r.bytes().toString('base64');
        break;
      case 'strings':
        out[name] = [...((out[name] as string[]) ?? []), r.bytes().toString('utf8')];
        break;
      case 'map':
      case 'bytesMap': {
        const [k, v] = entries(r.bytes(), kind === 'bytesMap');
        out[name] = { ...((out[name] as JsonObject) ?? {}), [k]: v };
        break;
      }
      case 'intOrString': {
        const v = decode(r.bytes(), { 1: ['type', 'int'], 2: ['intVal', 'int'], 3: ['strVal', 'string'] });
        out[name] = v['type'] === 1 ? v['strVal'] : (v['intVal'] ?? 0);
        break;
      }
      case 'msg': {
        const sub = decode(r.bytes(), field[2] as Schema);
        if (Object.keys(sub).length > 0) out[name] = sub;
        break;
      }
      case 'msgs':
        out[name] = [...((out[name] as JsonObject[]) ?? []), decode(r.bytes(), field[2] as Schema)];
        break;
    }
  }
  return out;
}

const MAGIC = Buffer.from([0x6b, 0x38, 0x73, 0x00]);

/** Decodes a `k8s\0`-framed runtime.Unknown holding one of the kinds above into its JSON form. */
export function decodeProtobufObject(body: Buffer): JsonObject {
  if (!body.subarray(0, 4).equals(MAGIC)) throw badRequest('protobuf body without the k8s magic prefix');
  const unknown = new Reader(body.subarray(4));
  let apiVersion = '';
  let kind = '';
  let raw: Buffer | undefined;
  while (!unknown.done) {
    const tag = unknown.varint();
    if (tag >> 3 === 1) {
      const tm = decode(unknown.bytes(), { 1: ['apiVersion', 'string'], 2: ['kind', 'string'] });
      apiVersion = String(tm['apiVersion'] ?? '');
      kind = String(tm['kind'] ?? '');
    } else if (tag >> 3 === 2) raw = unknown.bytes();
    else unknown.skip(tag & 7);
  }
  const schema = SCHEMAS[kind];
  if (!schema || !raw) {
    throw badRequest(
      `kube-sim reads protobuf only for ${Object.keys(SCHEMAS).join(', ')}; send ${kind || 'this object'} as JSON`,
    );
  }
  return { apiVersion, kind, metadata: {}, ...decode(raw, schema) };
}
