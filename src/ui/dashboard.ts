/**
 * The dashboard's web server: a few read-only GET routes over a metadata store, each answered
 * with a whole HTML page rendered on the server. Built on `node:http` alone: four GET routes
 * need no router, and no framework means nothing more to install or to keep safe.
 *
 * @packageDocumentation
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { toError } from '../errors';
import { runToSvg } from '../render/svg';
import type { ArtifactStore } from '../store/artifact-store';
import { storedArtifacts } from '../store/inline';
import type { MetadataStore } from '../store/metadata-store';
import type { RunRecord } from '../store/records';
import { entryChanges, parameterChanges } from './changes';
import { comparePage } from './compare-page';
import { errorPage } from './error-page';
import { LARGE_DAG_STEPS, largeDagSvg } from './large-dag';
import type { Html } from './html';
import { runPage } from './run-page';
import { RUN_STATUSES, runsPage, type RunsQuery } from './runs-page';
import { stepPage } from './step-page';

// model

/**
 * What a dashboard reads: a metadata store (runs and cache entries) and, when given, the
 * artifact store, to mark artifacts that are gone.
 *
 * @example
 * const options: DashboardOptions = { metadata: createSqliteMetadataStore('.stepcache/metadata.sqlite') };
 */
export interface DashboardOptions {
  readonly metadata: MetadataStore;
  readonly artifacts?: ArtifactStore | undefined;
  /** Runs per page of the runs list. @default 50 */
  readonly pageSize?: number | undefined;
}

/**
 * One answer of the dashboard, before it is written to a socket.
 *
 * @example
 * const { status, body } = await dashboard.respond('GET', '/');
 */
export interface DashboardResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

/**
 * A running dashboard server.
 *
 * @example
 * const server = await dashboard.listen(0, '127.0.0.1');
 * console.log(server.url);
 * await server.close();
 */
export interface DashboardServer {
  /** `http://host:port/`. */
  readonly url: string;
  /** The port it listens on (the one chosen when 0 was asked for). */
  readonly port: number;
  /** Stops listening and ends open connections. */
  close(): Promise<void>;
}

/**
 * A dashboard: its request handler for any `node:http` server, the same as a function of a
 * method and a URL, and a way to listen on a port.
 *
 * @example
 * const dashboard = createDashboard({ metadata });
 * http.createServer(dashboard.handler).listen(8080, '127.0.0.1');
 */
export interface Dashboard {
  /** The request listener for a `node:http` server. */
  readonly handler: http.RequestListener;
  /** The answer to a request, without a socket: what `handler` writes. It never rejects (a failure is a 500 page). */
  respond(method: string, url: string): Promise<DashboardResponse>;
  /** Listens on `host` (127.0.0.1 unless told) and `port` (0: any free port). */
  listen(port: number, host?: string): Promise<DashboardServer>;
}

// headers

/**
 * No script at all, nothing loaded from anywhere; styles inline (the page's one style sheet and
 * the SVG's attributes); forms submit only here; no framing.
 */
const CONTENT_SECURITY_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

const HTML_HEADERS: Readonly<Record<string, string>> = {
  'content-type': 'text/html; charset=utf-8',
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

const answer = (status: number, html: Html, extra: Readonly<Record<string, string>> = {}): DashboardResponse => ({ status, headers: { ...HTML_HEADERS, ...extra }, body: html.html });

// query

/** Why a query was refused: a 400 page says it. */
class BadRequest extends Error {}

const positive = (value: string | null, name: string, fallback: number, max: number): number => {
  if (value === null || value === '') return fallback;
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new BadRequest(`${name} must be a whole number of 1 or more, not "${value}".`);
  return Math.min(Number(value), max);
};

const required = (params: URLSearchParams, name: string, what: string): string => {
  const value = params.get(name);
  if (value === null || value === '') throw new BadRequest(`the query needs ${name}=<${what}>.`);
  return value;
};

const runsQuery = (params: URLSearchParams, pageSize: number): RunsQuery => {
  const status = params.get('status') ?? '';
  if (status !== '' && !(RUN_STATUSES as readonly string[]).includes(status)) throw new BadRequest(`status must be one of ${RUN_STATUSES.join(', ')}, not "${status}".`);
  const pipeline = params.get('pipeline') ?? '';
  return {
    pipeline: pipeline === '' ? undefined : pipeline,
    status: status === '' ? undefined : (status as RunRecord['status']),
    page: positive(params.get('page'), 'page', 1, Number.MAX_SAFE_INTEGER),
    pageSize: positive(params.get('limit'), 'limit', pageSize, 500),
  };
};

// the dashboard

/**
 * A read-only web dashboard of a store's runs: the runs (filtered by pipeline and status,
 * paginated), a run with its DAG and why each step ran, two runs compared step by step with
 * the speed-up the cache gave, and a step's cache entries over time. Only GET and HEAD are
 * answered (anything else is 405): nothing it serves changes the store. Every text read from
 * the store is escaped, and the pages carry no script (their Content-Security-Policy forbids any).
 *
 * @example
 * const dashboard = createDashboard({ metadata: createSqliteMetadataStore('.stepcache/metadata.sqlite') });
 * const server = await dashboard.listen(8080);
 * console.log(`open ${server.url}`);
 */
export const createDashboard = (options: DashboardOptions): Dashboard => {
  const { metadata, artifacts } = options;
  const pageSize = options.pageSize ?? 50;

  const notFound = (message: string): DashboardResponse => answer(404, errorPage('Not found', message));

  const readRun = async (id: string): Promise<RunRecord | DashboardResponse> => {
    const run = await metadata.getRun(id);
    return run ?? notFound(`There is no run "${id}" in this store (or its record is damaged). The runs page lists every run.`);
  };

  const previousRunOf = async (run: RunRecord): Promise<string | undefined> => {
    // The run index answers the one run of the pipeline that started just before.
    const [previous] = await metadata.listRunSummaries({ limit: 1, before: run, pipeline: run.pipeline });
    return previous?.id;
  };

  const missingArtifacts = async (run: RunRecord): Promise<ReadonlySet<string>> => {
    if (artifacts === undefined) return new Set();
    // Inline outputs live in the entry: never missing files.
    const refs = [...new Map(storedArtifacts(Object.values(run.steps).flatMap((s) => Object.values(s.outputs ?? {}))).filter((o) => o.kind !== 'none').map((o) => [o.id, { id: o.id, size: o.size }])).values()];
    if (refs.length === 0) return new Set();
    const present = await artifacts.present(refs);
    return new Set(refs.filter((_, i) => present[i] !== true).map((r) => r.id));
  };

  const routes = async (url: URL): Promise<DashboardResponse> => {
    const path = url.pathname;
    if (path === '/') return answer(200, runsPage(await metadata.listRunSummaries(), runsQuery(url.searchParams, pageSize)));
    if (path.startsWith('/runs/')) {
      const run = await readRun(decodeURIComponent(path.slice('/runs/'.length)));
      if (!('steps' in run)) return run;
      const large = Object.keys(run.steps).length >= LARGE_DAG_STEPS;
      const [svg, previousRun, missing] = await Promise.all([large ? largeDagSvg(run).html : runToSvg(run), previousRunOf(run), missingArtifacts(run)]);
      return answer(200, runPage(run, { svg, previousRun, missingArtifacts: missing }));
    }
    if (path === '/compare') {
      const a = await readRun(required(url.searchParams, 'a', 'run id'));
      if (!('steps' in a)) return a;
      const b = await readRun(required(url.searchParams, 'b', 'run id'));
      if (!('steps' in b)) return b;
      // what made each step's key differ, from the two entries' recorded components
      const pairs = Object.values(b.steps).flatMap((s2) => {
        const s1 = Object.hasOwn(a.steps, s2.name) ? a.steps[s2.name] : undefined;
        return s1?.key !== undefined && s2.key !== undefined && s1.key !== s2.key ? [{ step: s2.name, before: s1.key, after: s2.key }] : [];
      });
      const entries = await metadata.getEntries(pairs.flatMap((p) => [p.before, p.after]));
      const changes = new Map<string, readonly string[]>();
      pairs.forEach((p, i) => {
        const before = entries[2 * i];
        const after = entries[2 * i + 1];
        const listed = before !== undefined && after !== undefined ? entryChanges(before, after) : undefined;
        if (listed !== undefined) changes.set(p.step, listed);
      });
      return answer(200, comparePage(a, b, changes, parameterChanges(a.parameters, b.parameters)));
    }
    if (path === '/step') {
      const pipeline = required(url.searchParams, 'pipeline', 'pipeline name');
      const step = required(url.searchParams, 'step', 'step name');
      const entries = (await metadata.listEntries()).filter((e) => e.pipeline === pipeline && e.step === step);
      return answer(200, stepPage(pipeline, step, entries));
    }
    return notFound(`There is no page at ${path}.`);
  };

  const respond = async (method: string, rawUrl: string): Promise<DashboardResponse> => {
    if (method !== 'GET' && method !== 'HEAD') {
      return answer(405, errorPage('Method not allowed', `The dashboard only reads the store: it answers GET and HEAD, not ${method}.`), { allow: 'GET, HEAD' });
    }
    try {
      return await routes(new URL(rawUrl, 'http://dashboard.invalid'));
    } catch (e) {
      if (e instanceof BadRequest) return answer(400, errorPage('Bad request', `This page cannot be shown: ${e.message}`));
      if (e instanceof URIError) return answer(400, errorPage('Bad request', 'The address is not validly encoded.'));
      return answer(500, errorPage('The store could not be read', `${toError(e).message}. Check that the store is reachable, then reload.`));
    }
  };

  const handler: http.RequestListener = (req, res) => {
    const started = performance.now();
    void respond(req.method ?? 'GET', req.url ?? '/').then((r) => {
      const body = Buffer.from(r.body, 'utf8');
      res.writeHead(r.status, { ...r.headers, 'content-length': String(body.length), 'server-timing': `render;dur=${(performance.now() - started).toFixed(1)}` });
      res.end(req.method === 'HEAD' ? undefined : body);
    });
  };

  const listen = (port: number, host = '127.0.0.1'): Promise<DashboardServer> =>
    new Promise((resolve, reject) => {
      const server = http.createServer(handler);
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        const address = server.address() as AddressInfo;
        const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
        resolve({
          url: `http://${shownHost}:${address.port}/`,
          port: address.port,
          close: () =>
            new Promise<void>((done) => {
              server.close(() => done());
              server.closeAllConnections();
            }),
        });
      });
    });

  return Object.freeze({ handler, respond, listen });
};
