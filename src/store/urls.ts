/**
 * Stores named by URL, so a team configures its shared cache with two strings (in code, in a run
 * config file or in the environment) instead of code:
 *
 * - metadata: `postgres://user:password@host:5432/db?schema=ml_team` (or `postgresql://`); the
 *   password may also come from `PGPASSWORD`. Other query parameters (`sslmode`, ...) go to the driver.
 * - artifacts: `s3://bucket/prefix?endpoint=http://127.0.0.1:9000&region=us-east-1&forcePathStyle=true`
 *   (credentials from the AWS SDK's chain: environment, profile, role; or `s3://key:secret@bucket/...`),
 *   or `file:///shared/folder` for a folder every machine mounts.
 *
 * Parsing is pure and yields a {@link StoreUrlError} naming the variable or field at fault;
 * opening turns a parsed location into a store. URLs are only ever shown redacted ({@link redactStoreUrl}).
 *
 * @packageDocumentation
 */
import { fileURLToPath } from 'node:url';
import * as E from 'fp-ts/Either';
import { StepcacheError } from '../errors';
import { createFileArtifactStore, type ArtifactStore } from './artifact-store';
import type { MetadataStore, MetadataStoreOptions } from './metadata-store';
import { redactPostgresUrl } from './postgres-connection';
import { createPostgresMetadataStore } from './postgres-metadata-store';
import { createS3ArtifactStore } from './s3-artifact-store';

// model

/**
 * The environment variables that name a team's stores.
 *
 * @example
 * process.env[STORE_URL_VARIABLES.metadata] = 'postgres://ann@db.team/ml';
 */
export const STORE_URL_VARIABLES = Object.freeze({ metadata: 'STEPCACHE_METADATA_URL', artifacts: 'STEPCACHE_ARTIFACTS_URL' } as const);

/**
 * A metadata store named by URL: a PostgreSQL server and the schema of its tables.
 *
 * @example
 * const location: MetadataLocation = { _tag: 'Postgres', url: 'postgres://ann:pw@db/ml', schema: 'stepcache', shown: 'postgres://ann:***@db/ml' };
 */
export type MetadataLocation = { readonly _tag: 'Postgres'; readonly url: string; readonly schema: string; readonly shown: string };

/**
 * An artifact store named by URL: an S3 bucket and prefix, or a folder.
 *
 * @example
 * const location: ArtifactsLocation = { _tag: 'Folder', dir: '/mnt/team/artifacts', shown: 'file:///mnt/team/artifacts' };
 */
export type ArtifactsLocation =
  | {
      readonly _tag: 'S3';
      readonly bucket: string;
      readonly prefix: string;
      readonly endpoint?: string;
      readonly region?: string;
      readonly forcePathStyle?: boolean;
      /** Send and check checksums only where the protocol requires them (servers that mishandle `aws-chunked` uploads). */
      readonly checksumsWhenRequired?: boolean;
      readonly credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string };
      readonly shown: string;
    }
  | { readonly _tag: 'Folder'; readonly dir: string; readonly shown: string };

/**
 * Why a store URL cannot be used. `source` names where it came from (`STEPCACHE_METADATA_URL`,
 * `metadataUrl`, `store.metadata in run config team.yaml`); the message shows the URL redacted.
 *
 * @example
 * const e: StoreUrlError = { _tag: 'InvalidStoreUrl', source: 'STEPCACHE_ARTIFACTS_URL', message: 'Invalid STEPCACHE_ARTIFACTS_URL ...' };
 */
export interface StoreUrlError {
  readonly _tag: 'InvalidStoreUrl';
  readonly source: string;
  readonly message: string;
}

// redaction

/** Query parameters of an S3 URL that are shown (the others may hold anything). */
const SHOWN_S3_PARAMETERS = ['endpoint', 'region', 'forcePathStyle', 'checksums'];

/**
 * A store URL fit for messages and logs: the password or secret key replaced by `***`, and for
 * PostgreSQL the query string dropped (for S3 only its known parameters are kept).
 *
 * @example
 * redactStoreUrl('postgres://ann:hunter2@db:5432/ml?schema=x'); // 'postgres://ann:***@db:5432/ml'
 * redactStoreUrl('s3://AKIA123:wJalr@ml-cache/team?region=eu-west-1'); // 's3://AKIA123:***@ml-cache/team?region=eu-west-1'
 */
export const redactStoreUrl = (url: string): string => {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
  if (scheme === 's3') {
    try {
      const parsed = new URL(url);
      const user = parsed.username;
      const credentials = user === '' && parsed.password === '' ? '' : `${decodeURIComponent(user)}${parsed.password === '' ? '' : ':***'}@`;
      const query = new URLSearchParams();
      for (const name of SHOWN_S3_PARAMETERS) {
        const value = parsed.searchParams.get(name);
        if (value !== null) query.set(name, value.includes('@') ? redactPostgresUrl(value) : value);
      }
      const search = query.toString();
      return `s3://${credentials}${parsed.host}${parsed.pathname}${search === '' ? '' : `?${decodeURIComponent(search)}`}`;
    } catch {
      return url.replace(/^([a-z]+:\/\/)[^@/]*@/i, '$1***@').replace(/\?.*$/, '');
    }
  }
  if (scheme === 'postgres' || scheme === 'postgresql') return redactPostgresUrl(url);
  // Any other scheme: as written, without the password and the query string.
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:@/]*):[^@/]*@/i, '$1:***@').replace(/\?.*$/, '');
};

// parsing

const invalid = (source: string, url: string, why: string): E.Either<StoreUrlError, never> =>
  E.left({ _tag: 'InvalidStoreUrl', source, message: `Invalid ${source} ${JSON.stringify(redactStoreUrl(url))}: ${why}` });

const METADATA_FORMS = 'expected postgres://user:password@host:5432/database?schema=name (the password may instead come from PGPASSWORD)';
const ARTIFACTS_FORMS = 'expected s3://bucket/prefix?endpoint=...&region=...&forcePathStyle=true, or file:///shared/folder';
const SCHEMA_PATTERN = /^[A-Za-z_][A-Za-z0-9_$]{0,62}$/;

/**
 * Parses a metadata store URL. `source` names where it came from, for the message.
 *
 * @example
 * parseMetadataUrl('postgres://ann@db.team/ml?schema=vision', 'STEPCACHE_METADATA_URL');
 * // Right({ _tag: 'Postgres', url: 'postgres://ann@db.team/ml', schema: 'vision', shown: 'postgres://ann@db.team/ml' })
 */
export const parseMetadataUrl = (url: string, source: string): E.Either<StoreUrlError, MetadataLocation> => {
  let parsed: URL;
  try {
    parsed = new URL(url.trim());
  } catch {
    return invalid(source, url, `not a URL; ${METADATA_FORMS}.`);
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    return invalid(source, url, `the scheme ${parsed.protocol.replace(/:$/, '')} is not a metadata store stepcache knows; ${METADATA_FORMS}.`);
  }
  if (parsed.hostname === '') return invalid(source, url, `it names no host; ${METADATA_FORMS}.`);
  const schemas = parsed.searchParams.getAll('schema');
  const schema = schemas[0] ?? 'stepcache';
  if (schemas.length > 1 || !SCHEMA_PATTERN.test(schema)) {
    return invalid(source, url, `schema must be one name of letters, digits and "_" (at most 63 characters, not starting with a digit), got ${JSON.stringify(schemas.join(','))}.`);
  }
  parsed.searchParams.delete('schema');
  const connection = parsed.toString();
  return E.right({ _tag: 'Postgres', url: connection, schema, shown: redactStoreUrl(connection) });
};

const booleanParameter = (value: string | null): boolean | undefined | 'invalid' =>
  value === null ? undefined : value === 'true' || value === '1' ? true : value === 'false' || value === '0' ? false : 'invalid';

/**
 * Parses an artifact store URL. `source` names where it came from, for the message.
 *
 * @example
 * parseArtifactsUrl('s3://ml-cache/team?region=eu-west-1', 'artifactsUrl');
 * // Right({ _tag: 'S3', bucket: 'ml-cache', prefix: 'team', region: 'eu-west-1', shown: 's3://ml-cache/team?region=eu-west-1' })
 * parseArtifactsUrl('file:///mnt/team/artifacts', 'artifactsUrl');
 * // Right({ _tag: 'Folder', dir: '/mnt/team/artifacts', shown: 'file:///mnt/team/artifacts' })
 */
export const parseArtifactsUrl = (url: string, source: string): E.Either<StoreUrlError, ArtifactsLocation> => {
  let parsed: URL;
  try {
    parsed = new URL(url.trim());
  } catch {
    return invalid(source, url, `not a URL; ${ARTIFACTS_FORMS}.`);
  }
  if (parsed.protocol === 'file:') {
    if (parsed.host !== '') return invalid(source, url, `a file URL names a folder of this machine (file:///path), not one on host ${parsed.host}.`);
    if (parsed.search !== '') return invalid(source, url, 'a file URL takes no query parameters.');
    const dir = fileURLToPath(parsed);
    return E.right({ _tag: 'Folder', dir, shown: redactStoreUrl(url.trim()) });
  }
  if (parsed.protocol !== 's3:') return invalid(source, url, `the scheme ${parsed.protocol.replace(/:$/, '')} is not an artifact store stepcache knows; ${ARTIFACTS_FORMS}.`);
  const bucket = parsed.hostname;
  if (bucket === '') return invalid(source, url, `it names no bucket; ${ARTIFACTS_FORMS}.`);
  for (const name of parsed.searchParams.keys()) {
    if (!SHOWN_S3_PARAMETERS.includes(name)) return invalid(source, url, `unknown parameter ${name}; an s3 URL takes ${SHOWN_S3_PARAMETERS.join(', ')}.`);
  }
  const endpoint = parsed.searchParams.get('endpoint') ?? undefined;
  if (endpoint !== undefined && !/^https?:\/\/[^/]+/.test(endpoint)) return invalid(source, url, `endpoint must be an http:// or https:// URL, got ${JSON.stringify(redactStoreUrl(endpoint))}.`);
  const forcePathStyle = booleanParameter(parsed.searchParams.get('forcePathStyle'));
  if (forcePathStyle === 'invalid') return invalid(source, url, 'forcePathStyle must be true or false.');
  const checksums = parsed.searchParams.get('checksums');
  if (checksums !== null && checksums !== 'when-required' && checksums !== 'when-supported') return invalid(source, url, 'checksums must be when-required or when-supported.');
  const region = parsed.searchParams.get('region') ?? undefined;
  if (region === '') return invalid(source, url, 'region must not be empty.');
  if ((parsed.username === '') !== (parsed.password === '')) return invalid(source, url, 'credentials in an s3 URL need both parts, s3://accessKeyId:secretAccessKey@bucket (or leave them to the environment or the AWS profile).');
  return E.right({
    _tag: 'S3',
    bucket,
    prefix: decodeURIComponent(parsed.pathname).replace(/^\/+|\/+$/g, ''),
    ...(endpoint === undefined ? {} : { endpoint }),
    ...(region === undefined ? {} : { region }),
    ...(forcePathStyle === undefined ? {} : { forcePathStyle }),
    ...(checksums === 'when-required' ? { checksumsWhenRequired: true } : {}),
    ...(parsed.username === '' ? {} : { credentials: { accessKeyId: decodeURIComponent(parsed.username), secretAccessKey: decodeURIComponent(parsed.password) } }),
    shown: redactStoreUrl(url.trim()),
  });
};

// opening

/**
 * A metadata store opened from its location. It offers the step lock that goes with it
 * (`stepLock()`: PostgreSQL advisory locks in the same schema), so machines sharing it execute each key once.
 *
 * @example
 * const location = parseMetadataUrl(process.env.STEPCACHE_METADATA_URL!, 'STEPCACHE_METADATA_URL');
 * if (E.isRight(location)) createRunner({ metadata: openMetadataLocation(location.right) });
 */
export const openMetadataLocation = (location: MetadataLocation, options: MetadataStoreOptions = {}): MetadataStore =>
  createPostgresMetadataStore({ url: location.url, schema: location.schema, ...options });

/**
 * An artifact store opened from its location; `close` releases its connections.
 *
 * @example
 * const location = parseArtifactsUrl('s3://ml-cache/team', 'artifactsUrl');
 * if (E.isRight(location)) { const { store, close } = openArtifactsLocation(location.right); }
 */
export const openArtifactsLocation = (location: ArtifactsLocation, secret?: string | Uint8Array): { readonly store: ArtifactStore; readonly close: () => void } => {
  if (location._tag === 'Folder') return { store: createFileArtifactStore(location.dir, secret === undefined ? {} : { secret }), close: () => undefined };
  const store = createS3ArtifactStore({
    ...(secret === undefined ? {} : { secret }),
    bucket: location.bucket,
    prefix: location.prefix,
    ...(location.endpoint === undefined ? {} : { endpoint: location.endpoint }),
    ...(location.region === undefined ? {} : { region: location.region }),
    ...(location.forcePathStyle === undefined ? {} : { forcePathStyle: location.forcePathStyle }),
    clientConfig: {
      ...(location.credentials === undefined ? {} : { credentials: { ...location.credentials } }),
      ...(location.checksumsWhenRequired === true ? { requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' } : {}),
    },
  });
  return { store, close: () => store.close() };
};

/**
 * The URLs of a runner's stores and where each came from, resolved in this order: the option
 * given in code (or from a run config), then the environment variable, else the embedded default
 * (`undefined`).
 *
 * @example
 * resolveStoreUrls({ artifactsUrl: 's3://ml-cache/team' }, { STEPCACHE_METADATA_URL: 'postgres://db/ml' });
 * // { metadata: { url: 'postgres://db/ml', source: 'STEPCACHE_METADATA_URL' }, artifacts: { url: 's3://ml-cache/team', source: 'artifactsUrl' } }
 */
export const resolveStoreUrls = (
  options: { readonly metadataUrl?: string | undefined; readonly artifactsUrl?: string | undefined },
  env: Readonly<Record<string, string | undefined>>,
  names: { readonly metadata: string; readonly artifacts: string } = { metadata: 'metadataUrl', artifacts: 'artifactsUrl' },
): { readonly metadata?: { readonly url: string; readonly source: string }; readonly artifacts?: { readonly url: string; readonly source: string } } => {
  const pick = (given: string | undefined, name: string, variable: string) => {
    if (given !== undefined) return { url: given, source: name };
    const fromEnv = env[variable];
    return fromEnv === undefined || fromEnv.trim() === '' ? undefined : { url: fromEnv, source: variable };
  };
  const metadata = pick(options.metadataUrl, names.metadata, STORE_URL_VARIABLES.metadata);
  const artifacts = pick(options.artifactsUrl, names.artifacts, STORE_URL_VARIABLES.artifacts);
  return { ...(metadata === undefined ? {} : { metadata }), ...(artifacts === undefined ? {} : { artifacts }) };
};

/**
 * The Promise-API edge of parsing: the location, or a `StepcacheError` of code `INVALID_OPTIONS`
 * whose `field` is where the URL came from.
 *
 * @example
 * const location = orThrow(parseMetadataUrl(url, 'metadataUrl'));
 */
export const orThrow = <A>(parsed: E.Either<StoreUrlError, A>): A => {
  if (E.isRight(parsed)) return parsed.right;
  throw new StepcacheError('INVALID_OPTIONS', parsed.left.message, { field: parsed.left.source });
};

/**
 * The warning for a metadata store shared by machines whose artifacts stay in this machine's folder.
 *
 * @example
 * logger.warn(localArtifactsWarning('postgres://ann:***@db/ml', '/home/ann/.stepcache/artifacts'));
 */
export const localArtifactsWarning = (metadata: string, artifactsDir: string): string =>
  `The metadata store ${metadata} is shared by machines, but artifacts are kept in ${artifactsDir}, a folder of this machine only: ` +
  `colleagues will find these entries but cannot read their artifacts, and will execute those steps again. ` +
  `Set STEPCACHE_ARTIFACTS_URL (or artifactsUrl) to a store everyone reaches, e.g. s3://bucket/prefix or file:///shared/folder.`;
