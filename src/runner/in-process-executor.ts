/**
 * The in-process executor: calls the step function here, splits its result into the declared
 * outputs, serializes each in its format and stores it in the artifact store, or, when it is
 * tiny, keeps its bytes inside its descriptor (see `INLINE_MAX_BYTES`).
 *
 * @packageDocumentation
 */
import * as E from 'fp-ts/Either';
import * as TE from 'fp-ts/TaskEither';
import { StepcacheError, toError } from '../errors';
import type { GraphNode } from '../pipeline/pipeline';
import { DEFAULT_OUTPUT } from '../step/step';
import { inlineForm, keptInline } from '../store/inline';
import { deserializeOutput, serializeOutput, type ArtifactDescriptor, type SerializedOutput } from '../store/serialize';
import type { ExecutionRequest, ExecutionResult, ExecutionStore, Executor } from './executor';

// utils

/**
 * A step error naming the step (and the field) at fault.
 *
 * @example
 * stepFailure('STEP_FAILED', 'Step a failed: boom', 'a');
 */
export const stepFailure = (code: StepcacheError['code'], message: string, step: string, cause?: unknown, field?: string): StepcacheError =>
  new StepcacheError(code, message, { step, ...(cause === undefined ? {} : { cause }), ...(field === undefined ? {} : { field }) });

/**
 * The format an output of a node is stored in.
 *
 * @example
 * formatOf(node, 'model'); // 'auto'
 */
export const formatOf = (node: GraphNode, output: string) => node.step.outputSpec?.[output] ?? 'auto';

const splitOutputs = (node: GraphNode, result: unknown): E.Either<StepcacheError, Record<string, unknown>> => {
  if (node.step.outputSpec === undefined) return E.right({ [DEFAULT_OUTPUT]: result });
  if (typeof result !== 'object' || result === null) {
    return E.left(stepFailure('STEP_FAILED', `Step ${node.name} declares outputs ${node.outputNames.join(', ')} but returned ${result === null ? 'null' : typeof result}.`, node.name));
  }
  const missing = node.outputNames.filter((o) => !(o in result));
  if (missing.length > 0) {
    return E.left(stepFailure('STEP_FAILED', `Step ${node.name} declares output${missing.length > 1 ? 's' : ''} ${missing.join(', ')} but did not return ${missing.length > 1 ? 'them' : 'it'}.`, node.name, undefined, missing[0]));
  }
  return E.right(Object.fromEntries(node.outputNames.map((o) => [o, (result as Record<string, unknown>)[o]])));
};

const describeOutput = (node: GraphNode, name: string): string =>
  node.outputNames.length === 1 && name === DEFAULT_OUTPUT ? `The output of step ${node.name}` : `Output ${name} of step ${node.name}`;

/** An output as it left the step: its bytes (a snapshot), or already stored when its bytes could be stored at once. */
type Taken = { readonly serialized: SerializedOutput; readonly stored?: ArtifactDescriptor };

const unencodable = (node: GraphNode, name: string, e: unknown): StepcacheError =>
  stepFailure('UNENCODABLE_VALUE', `${describeOutput(node, name)} cannot be stored: writing it failed: ${toError(e).message}.`, node.name, e, name);

const descriptorOf = (serialized: SerializedOutput, id: string, inline?: string): ArtifactDescriptor => {
  const { kind, dtype, format } = serialized;
  return Object.freeze({ id, kind, ...(dtype === undefined ? {} : { dtype }), size: serialized.bytes.byteLength, format, ...(inline === undefined ? {} : { inline }) });
};

/**
 * How to give an output a codec, when the reason a value cannot be stored says to: the step's
 * `.outputs({ name: codec })`; a step of one unnamed output then returns `{ output: value }`, and
 * `p.call` gives `{ output: handle }`.
 */
const codecAdvice = (node: GraphNode, name: string, reason: string): string => {
  if (!reason.includes('io-ts codec') || formatOf(node, name) !== 'auto') return '';
  return node.outputNames.length === 1 && name === DEFAULT_OUTPUT
    ? ` A codec is given with .outputs({ ${DEFAULT_OUTPUT}: codec }) on step ${node.name}, whose function then returns { ${DEFAULT_OUTPUT}: value } (and p.call gives { ${DEFAULT_OUTPUT}: handle }).`
    : ` A codec is given with .outputs({ ${name}: codec, ... }) on step ${node.name}, in place of 'auto'.`;
};

/**
 * Every output, at once and synchronously, as soon as the step returned: what is stored is what
 * the step returned at that moment, even if it keeps a reference and changes it later. JSON is
 * written out (a snapshot by nature); the bytes of a typed array, `Buffer` or `ArrayBuffer` are
 * stored right away without a copy when the store can store at once (`putNow`: nothing else runs
 * meanwhile), and copied otherwise.
 */
const takeOutputs = (node: GraphNode, outputs: Readonly<Record<string, unknown>>, store: ExecutionStore): E.Either<StepcacheError, Record<string, Taken>> => {
  const taken: Record<string, Taken> = {};
  const putNow = store.artifacts.putNow;
  for (const [name, value] of Object.entries(outputs)) {
    // A value can throw while it is read (a Proxy's trap, a getter) or be too big to write as text (RangeError).
    const written = E.tryCatch(
      () => serializeOutput(value, formatOf(node, name), { snapshot: putNow === undefined }),
      (e) => unencodable(node, name, e),
    );
    if (E.isLeft(written)) return written;
    const bytes = written.right;
    if (E.isLeft(bytes)) {
      const at = bytes.left.path === '' ? '' : ` at ${bytes.left.path}`;
      return E.left(stepFailure('UNENCODABLE_VALUE', `${describeOutput(node, name)}${at} cannot be stored: it is ${bytes.left.reason}.${codecAdvice(node, name, bytes.left.reason)}`, node.name, undefined, name));
    }
    const serialized = bytes.right;
    if (keptInline(store.artifacts, serialized.bytes)) {
      // Kept inside the entry: a copy of a few bytes, handed over like any snapshot.
      const { sharesMemory: _shared, ...rest } = serialized;
      taken[name] = { serialized: serialized.sharesMemory === true ? { ...rest, bytes: serialized.bytes.slice() } : serialized };
      continue;
    }
    if (serialized.sharesMemory !== true || putNow === undefined) {
      taken[name] = { serialized };
      continue;
    }
    const readable = decodeSnapshot(node, name, serialized); // checked on the bytes as they are, then dropped
    if (E.isLeft(readable)) return readable;
    const id = E.tryCatch(
      () => putNow(serialized.bytes),
      (e) => stepFailure('STORE_UNAVAILABLE', `Output ${name} of step ${node.name} could not be stored: ${toError(e).message}`, node.name, e, name),
    );
    if (E.isLeft(id)) return id;
    const { sharesMemory: _shared, ...rest } = serialized;
    taken[name] =
      id.right === undefined
        ? { serialized: { ...rest, bytes: serialized.bytes.slice() } } // the store cannot store now: a copy, stored afterwards
        : { serialized: rest, stored: descriptorOf(serialized, id.right) };
  }
  return E.right(taken);
};

/**
 * The value the steps downstream get: decoded from the bytes to be stored (never the step's own
 * object, which it may still hold and change), so it equals what a later run loads. A codec that
 * cannot read back what it wrote fails the step now rather than every later load.
 */
const decodeSnapshot = (node: GraphNode, name: string, serialized: SerializedOutput): E.Either<StepcacheError, unknown> => {
  const { bytes } = serialized;
  const decoded = deserializeOutput(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), descriptorOf(serialized, ''), formatOf(node, name));
  return E.isRight(decoded)
    ? decoded
    : E.left(stepFailure('UNENCODABLE_VALUE', `${describeOutput(node, name)} cannot be stored: its stored form does not read back (${decoded.left.message}).`, node.name, undefined, name));
};

const storeOutput = async (store: ExecutionStore, node: GraphNode, name: string, serialized: SerializedOutput): Promise<E.Either<StepcacheError, ArtifactDescriptor>> => {
  const { idOf } = store.artifacts;
  if (idOf !== undefined && keptInline(store.artifacts, serialized.bytes)) {
    const id = await TE.tryCatch(async () => idOf(serialized.bytes), toError)();
    if (E.isLeft(id)) return E.left(stepFailure('STORE_UNAVAILABLE', `Output ${name} of step ${node.name} could not be named: ${id.left.message}`, node.name, id.left, name));
    return E.right(descriptorOf(serialized, id.right, inlineForm(serialized.bytes)));
  }
  const stored = await TE.tryCatch(() => store.artifacts.put(serialized.bytes), toError)();
  if (E.isLeft(stored)) return E.left(stepFailure('STORE_UNAVAILABLE', `Output ${name} of step ${node.name} could not be stored: ${stored.left.message}`, node.name, stored.left, name));
  return E.right(descriptorOf(serialized, stored.right));
};

/**
 * The pause before the try after failed try `attempt` (1-based) of a step that has retries: 100 ms,
 * then doubling, at most 5 s. Short, because a step in this process fails for its own reasons
 * far more often than for a service that needs time to come back.
 *
 * @example
 * retryPauseMs(1); // 100
 * retryPauseMs(3); // 400
 */
export const retryPauseMs = (attempt: number): number => Math.min(5_000, 100 * 2 ** (attempt - 1));

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Calls the step function, again after a pause while it throws and retries are left. */
const callWithRetries = async (node: GraphNode, argument: Readonly<Record<string, unknown>>, retries: number): Promise<E.Either<Error, unknown>> => {
  for (let attempt = 1; ; attempt++) {
    const result = await TE.tryCatch(async () => node.step.fn(argument as never), toError)();
    if (E.isRight(result) || attempt > retries) return result;
    await pause(retryPauseMs(attempt));
  }
};

// the executor

/**
 * Executes steps in this process: the default executor. A step function that throws is called
 * again `request.retries` times (after 100 ms, 200 ms, 400 ms…, see {@link retryPauseMs}); only a
 * throw is retried, never outputs that cannot be stored (another try returns the same). Outputs are serialized as soon as the
 * step returns, then stored one after the other; their values, decoded from those bytes (never
 * the step's own objects), are returned for the first consumer downstream to use without reading
 * them back. Binary outputs (typed arrays, `Buffer`s, `ArrayBuffer`s) are stored at once instead
 * when the store can (`putNow`), without a copy, and their consumers read them back. Outputs of
 * at most `INLINE_MAX_BYTES` are not stored at all when the store can name bytes (`idOf`): their
 * descriptors carry them, into the entry.
 *
 * @example
 * createRunner({ executor: inProcessExecutor() });
 */
export const inProcessExecutor = (): Executor =>
  Object.freeze({
    execute: async (request: ExecutionRequest, store: ExecutionStore): Promise<E.Either<StepcacheError, ExecutionResult>> => {
      const { node } = request;
      const argument = await request.argument();
      if (E.isLeft(argument)) return argument;
      const started = performance.now();
      const retries = request.retries ?? 0;
      const result = await callWithRetries(node, argument.right, retries);
      if (E.isLeft(result)) {
        const tries = retries === 0 ? '' : ` (after ${String(retries + 1)} tries)`;
        return E.left(stepFailure('STEP_FAILED', `Step ${node.name} failed${tries}: ${result.left.message}`, node.name, result.left));
      }
      const split = E.flatten(
        E.tryCatch(
          () => splitOutputs(node, result.right),
          (e) => stepFailure('UNENCODABLE_VALUE', `The result of step ${node.name} cannot be read: ${toError(e).message}.`, node.name, e),
        ),
      );
      const outputs = E.chain((parts: Record<string, unknown>) => takeOutputs(node, parts, store))(split);
      if (E.isLeft(outputs)) return outputs;
      // Outputs stored at once are not handed over: their consumers read (and verify) the artifact.
      const values: Record<string, unknown> = {};
      for (const [name, { serialized, stored }] of Object.entries(outputs.right)) {
        if (stored !== undefined) continue;
        const value = decodeSnapshot(node, name, serialized);
        if (E.isLeft(value)) return value;
        values[name] = value.right;
      }
      const descriptors: Record<string, ArtifactDescriptor> = {};
      for (const [name, { serialized, stored }] of Object.entries(outputs.right)) {
        const descriptor = stored === undefined ? await storeOutput(store, node, name, serialized) : E.right(stored);
        if (E.isLeft(descriptor)) return descriptor;
        descriptors[name] = descriptor.right;
      }
      return E.right({ descriptors, durationMs: performance.now() - started, values });
    },
  });
