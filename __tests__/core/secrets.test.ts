import { describe, expect, test } from '@jest/globals';
import {
  basicAuthorization,
  headerSecrets,
  isLoopbackHost,
  redactSecrets,
  redactUrl,
  urlPathSecrets,
  urlUserInfoSecrets,
} from '../../packages/core/index.ts';

describe('what a credential turns into', () => {
  test('a URL password is masked as written, decoded, with its user and as the Basic header', () => {
    const secrets = urlUserInfoSecrets('https://admin:p%40ss%2Fword@prom.example.com/');
    const header = basicAuthorization('admin', 'p@ss/word');
    expect(secrets).toEqual(
      expect.arrayContaining(['p%40ss%2Fword', 'p@ss/word', 'admin:p@ss/word', header, header.slice(6)]),
    );
    // With a password, the user name is who connects, not a secret: masking "admin" or
    // "postgres" would blank out every such word in a log.
    expect(secrets).not.toContain('admin');
    expect(urlUserInfoSecrets('postgres://postgres@127.0.0.1:5432/shop')).toEqual([]);
  });

  test('a user name standing alone in an http(s) URL is the token', () => {
    expect(urlUserInfoSecrets('https://ghp_0123456789abcdef@github.com/acme/shop.git')).toContain(
      'ghp_0123456789abcdef',
    );
  });

  test('a webhook path is masked whole and by its secret last segment', () => {
    expect(urlPathSecrets('https://hooks.slack.com/services/T0AAA/B0BBB/xyzSECRET123?x=1')).toEqual(
      expect.arrayContaining([
        '/services/T0AAA/B0BBB/xyzSECRET123?x=1',
        '/services/T0AAA/B0BBB/xyzSECRET123',
        'xyzSECRET123',
      ]),
    );
  });

  test('a Basic header gives its base64, user:password and password; other schemes their token', () => {
    const header = basicAuthorization('svc', 'hunter22');
    expect(headerSecrets(header)).toEqual([header, header.slice(6), 'svc:hunter22', 'hunter22']);
    expect(headerSecrets('Bearer abc.def.ghi')).toEqual(['Bearer abc.def.ghi', 'abc.def.ghi']);
  });

  test('URLs are shown without user info, even unparsable ones', () => {
    expect(redactUrl('http://u:p@prom:9090/api')).toBe('http://***@prom:9090/api');
    expect(redactUrl('http://u:p@bad host/')).toBe('http://***@bad host/');
    expect(redactUrl('http://prom:9090/a@b')).toBe('http://prom:9090/a@b');
  });

  test('the longest secret is replaced first, so no part of it is left', () => {
    expect(redactSecrets('token abc-123-xyz', ['abc', 'abc-123-xyz'])).toBe('token ***');
  });

  test.each([
    ['localhost', true],
    ['127.0.0.1', true],
    ['127.8.9.10', true],
    ['[::1]', true],
    ['hooks.slack.com', false],
    ['127.0.0.1.example.com', false],
    ['10.0.0.1', false],
  ])('%s is loopback: %s', (host, loopback) => {
    expect(isLoopbackHost(host)).toBe(loopback);
  });
});

describe('kubeconfig credentials', () => {
  test('a user and password give the Basic header the client sends; a server URL its user info', async () => {
    const { KubeConfig } = await import('@kubernetes/client-node');
    const { kubeconfigSecrets } = await import('../../packages/kube/client.ts');
    const kc = new KubeConfig();
    kc.loadFromString(
      [
        'apiVersion: v1',
        'kind: Config',
        'clusters: [{ name: c, cluster: { server: "https://ops:Srv3rPass@k8s.example.com:6443" } }]',
        'users: [{ name: u, user: { username: deployer, password: Kub3Passw0rd } }]',
        'contexts: [{ name: x, context: { cluster: c, user: u } }]',
        'current-context: x',
      ].join('\n'),
    );
    const header = basicAuthorization('deployer', 'Kub3Passw0rd');
    expect(kubeconfigSecrets(kc)).toEqual(
      expect.arrayContaining(['Kub3Passw0rd', header, header.slice(6), 'deployer:Kub3Passw0rd', 'Srv3rPass']),
    );
  });
});
