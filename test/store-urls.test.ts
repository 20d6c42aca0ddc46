/**
 * Stores named by URL: parsing, errors naming where a URL came from, redaction (a password never
 * shows), the order of code, run config and environment, and the warning about local artifacts.
 */
import * as E from 'fp-ts/Either';
import fc from 'fast-check';
import { createRunner, StepcacheError } from '../src';
import { parseRunConfigText } from '../src/config/run-config';
import { storeAccess } from '../src/runner/stores';
import { parseArtifactsUrl, parseMetadataUrl, redactStoreUrl, resolveStoreUrls } from '../src/store/urls';
import { collectingLogger, removeDir, tempDir } from './support/fixtures';

describe('parseMetadataUrl', () => {
  it('reads a PostgreSQL URL and its schema, keeping the other parameters for the driver', () => {
    expect(parseMetadataUrl('postgres://ann:pw@db.team:5433/ml?schema=vision&sslmode=require', 'STEPCACHE_METADATA_URL')).toEqual(
      E.right({ _tag: 'Postgres', url: 'postgres://ann:pw@db.team:5433/ml?sslmode=require', schema: 'vision', shown: 'postgres://ann:***@db.team:5433/ml' }),
    );
    expect(parseMetadataUrl('postgresql://db/ml', 'metadataUrl')).toEqual(E.right({ _tag: 'Postgres', url: 'postgresql://db/ml', schema: 'stepcache', shown: 'postgresql://db/ml' }));
  });

  it.each([
    ['mysql://ann:hunter2@db/ml', 'the scheme mysql is not a metadata store'],
    ['not a url', 'not a URL'],
    ['postgres://ann:hunter2@db/ml?schema=a;drop', 'schema must be one name'],
    ['postgres://ann:hunter2@db/ml?schema=a&schema=b', 'schema must be one name'],
  ])('refuses %s, naming the variable, without the password', (url, why) => {
    const parsed = parseMetadataUrl(url, 'STEPCACHE_METADATA_URL');
    expect(E.isLeft(parsed) && parsed.left.source).toBe('STEPCACHE_METADATA_URL');
    const message = E.isLeft(parsed) ? parsed.left.message : '';
    expect(message).toContain('Invalid STEPCACHE_METADATA_URL');
    expect(message).toContain(why);
    expect(message).not.toContain('hunter2');
  });
});

describe('parseArtifactsUrl', () => {
  it('reads an S3 URL with its endpoint, region and addressing style', () => {
    expect(parseArtifactsUrl('s3://ml-cache/team/a?endpoint=http://127.0.0.1:9000&region=us-east-1&forcePathStyle=true', 'artifactsUrl')).toEqual(
      E.right({
        _tag: 'S3',
        bucket: 'ml-cache',
        prefix: 'team/a',
        endpoint: 'http://127.0.0.1:9000',
        region: 'us-east-1',
        forcePathStyle: true,
        shown: 's3://ml-cache/team/a?endpoint=http://127.0.0.1:9000&region=us-east-1&forcePathStyle=true',
      }),
    );
  });

  it('reads credentials from an S3 URL and never shows the secret key', () => {
    const parsed = parseArtifactsUrl('s3://AKIAEXAMPLE:wJalrXUtn%2FK7MDENG@ml-cache/team?checksums=when-required', 'STEPCACHE_ARTIFACTS_URL');
    expect(E.isRight(parsed) && parsed.right).toMatchObject({
      _tag: 'S3',
      credentials: { accessKeyId: 'AKIAEXAMPLE', secretAccessKey: 'wJalrXUtn/K7MDENG' },
      checksumsWhenRequired: true,
      shown: 's3://AKIAEXAMPLE:***@ml-cache/team?checksums=when-required',
    });
  });

  it('reads a file URL as a folder of this machine', () => {
    expect(parseArtifactsUrl('file:///mnt/team/artifacts', 'artifactsUrl')).toEqual(E.right({ _tag: 'Folder', dir: '/mnt/team/artifacts', shown: 'file:///mnt/team/artifacts' }));
  });

  it.each([
    ['http://ml-cache/team', 'the scheme http is not an artifact store'],
    ['s3://k:hunter2@ml-cache/team?acl=public', 'unknown parameter acl'],
    ['s3://k:hunter2@ml-cache/team?forcePathStyle=yes', 'forcePathStyle must be true or false'],
    ['s3://k:hunter2@ml-cache/team?endpoint=ftp://x', 'endpoint must be an http'],
    ['s3://:hunter2@ml-cache/team', 'need both parts'],
    ['file://server/share', 'a folder of this machine'],
  ])('refuses %s, naming the option, without the secret', (url, why) => {
    const parsed = parseArtifactsUrl(url, 'artifactsUrl');
    const message = E.isLeft(parsed) ? parsed.left.message : '';
    expect(message).toContain('Invalid artifactsUrl');
    expect(message).toContain(why);
    expect(message).not.toContain('hunter2');
  });
});

describe('redactStoreUrl', () => {
  const secret = fc.string({ minLength: 6, maxLength: 20 }).filter((s) => /[A-Za-z0-9]{6}/.test(s));
  it('never shows the password of a PostgreSQL URL or the secret key of an S3 URL', () => {
    fc.assert(
      fc.property(secret, fc.constantFrom('postgres://ann:%s@db:5432/ml?schema=x', 's3://AKIA:%s@bucket/prefix?region=eu-west-1', 'postgres://ann:%s@db/ml'), (password, form) => {
        const url = form.replace('%s', encodeURIComponent(password));
        const shown = redactStoreUrl(url);
        expect(shown).not.toContain(encodeURIComponent(password));
        expect(shown).not.toContain(password);
        expect(shown).toContain(':***@');
      }),
    );
  });
});

describe('where a runner finds its stores', () => {
  it('takes the option before the environment variable, and the variable before the embedded store', () => {
    const env = { STEPCACHE_METADATA_URL: 'postgres://db/from-env', STEPCACHE_ARTIFACTS_URL: 's3://env-bucket' };
    expect(resolveStoreUrls({ metadataUrl: 'postgres://db/from-code' }, env)).toEqual({
      metadata: { url: 'postgres://db/from-code', source: 'metadataUrl' },
      artifacts: { url: 's3://env-bucket', source: 'STEPCACHE_ARTIFACTS_URL' },
    });
    expect(resolveStoreUrls({}, {})).toEqual({});
    expect(resolveStoreUrls({}, { STEPCACHE_METADATA_URL: '  ' })).toEqual({});
  });

  it('refuses an invalid URL when the runner is made, naming the variable at fault and not the password', () => {
    const access = () => storeAccess({ logger: collectingLogger() }, { STEPCACHE_METADATA_URL: 'mysql://ann:hunter2@db/ml' });
    expect(access).toThrow(StepcacheError);
    try {
      access();
    } catch (e) {
      expect(e).toMatchObject({ code: 'INVALID_OPTIONS', field: 'STEPCACHE_METADATA_URL' });
      expect(String((e as Error).message)).not.toContain('hunter2');
    }
    expect(() => createRunner({ artifactsUrl: 'ftp://x' })).toThrow(/Invalid artifactsUrl "ftp:\/\/x"/);
  });

  it('uses the PostgreSQL step lock with a PostgreSQL metadata store, and file locks with the embedded store', () => {
    const team = storeAccess({ metadataUrl: 'postgres://ann@127.0.0.1:1/ml' }, {});
    const embedded = storeAccess({ dir: '/tmp/embedded-store' }, {});
    // The PostgreSQL lock is the only one that asks the server: acquiring it on an unreachable port fails naming the lock.
    return Promise.all([
      expect(team.lock.acquire('0123456789abcdef')).rejects.toThrow(/PostgreSQL step lock at postgres:\/\/ann@127\.0\.0\.1:1\/ml/),
      team.close(),
      embedded.close(),
    ]);
  });

  it('warns once that colleagues cannot read artifacts kept in a local folder beside a team metadata store', async () => {
    const dir = tempDir();
    const logger = collectingLogger();
    const access = storeAccess({ dir, logger, metadataUrl: 'postgres://ann:hunter2@127.0.0.1:1/ml' }, {});
    try {
      await access.open();
      await access.open();
      const warnings = logger.warnings.filter((l) => l.includes("shared by machines"));
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toContain('postgres://ann:***@127.0.0.1:1/ml');
      expect(warnings[0]).toContain('STEPCACHE_ARTIFACTS_URL');
      expect(warnings.join('\n')).not.toContain('hunter2');
    } finally {
      await access.close();
      removeDir(dir);
    }
  });

  it('does not warn when the artifacts are shared too', async () => {
    const dir = tempDir();
    const logger = collectingLogger();
    const access = storeAccess({ dir, logger, metadataUrl: 'postgres://ann@127.0.0.1:1/ml', artifactsUrl: `file://${dir}/shared` }, {});
    try {
      await access.open();
      expect(logger.warnings.filter((l) => l.includes("shared by machines"))).toEqual([]);
    } finally {
      await access.close();
      removeDir(dir);
    }
  });
});

describe('the store section of a run config', () => {
  it('becomes runner options', () => {
    const config = parseRunConfigText('store:\n  metadata: postgres://ann@db/ml?schema=vision\n  artifacts: s3://ml-cache/team\n', 'yaml', 'team.yaml');
    expect(E.isRight(config) && config.right.store).toEqual({ metadataUrl: 'postgres://ann@db/ml?schema=vision', artifactsUrl: 's3://ml-cache/team' });
    const none = parseRunConfigText('enableCache: true\n', 'yaml', 'team.yaml');
    expect(E.isRight(none) && none.right.store).toBeUndefined();
  });

  it.each([
    ['store:\n  metadata: mysql://ann:hunter2@db/ml\n', 'store.metadata', 'Invalid store.metadata in run config team.yaml'],
    ['store:\n  artifacts: 42\n', 'store.artifacts', 'expected a URL'],
    ['store:\n  bucket: x\n', 'store.bucket', 'allowed keys: metadata, artifacts'],
    ['store: postgres://db\n', 'store', 'expected an object'],
  ])('refuses %j naming the field', (text, field, message) => {
    const config = parseRunConfigText(text, 'yaml', 'team.yaml');
    expect(E.isLeft(config) && config.left).toMatchObject({ _tag: 'ConfigInvalid', field });
    expect(E.isLeft(config) ? config.left.message : '').toContain(message);
    expect(E.isLeft(config) ? config.left.message : '').not.toContain('hunter2');
  });
});
