/**
 * Compile-time tests of the public API: checked by test/types.test.ts with the TypeScript
 * compiler. Each `@ts-expect-error` must stay an error; each `expectType` must hold.
 */
import * as t from 'io-ts';
import { createRunner, pipeline, step, type Handle, type Run, type StepInput, type StepOutput } from '../../src';

type Equal<A, B> = (<X>() => X extends A ? 1 : 2) extends <X>() => X extends B ? 1 : 2 ? true : false;
const expectType = <T extends true>(): T => true as T;

const loader = step(async function training_data_loader() {
  return { X_train: [[1]], X_test: [[2]], y_train: [0], y_test: [1] };
}).outputs({ X_train: 'auto', X_test: 'auto', y_train: 'auto', y_test: 'auto' });

const trainer = step(async function svc_trainer({ X_train, y_train, gamma }: { X_train: number[][]; y_train: number[]; gamma: number }) {
  return { acc: X_train.length + y_train.length + gamma };
});

expectType<Equal<StepInput<typeof trainer>, { X_train: number[][]; y_train: number[]; gamma: number }>>();
expectType<Equal<StepOutput<typeof trainer>, { acc: number }>>();

export const ok = pipeline('training_pipeline', (p, { gamma = 0.002 }: { gamma?: number }) => {
  const { X_train, y_train } = p.call(loader);
  expectType<Equal<typeof X_train, Handle<number[][]>>>();
  const model = p.call(trainer, { X_train, y_train, gamma });
  expectType<Equal<typeof model, Handle<{ acc: number }>>>();
  return { model };
});

export const wrongHandle = pipeline('wrong', (p) => {
  const { X_train, y_train } = p.call(loader);
  // @ts-expect-error: a Handle<number[]> cannot feed an input typed number[][]
  p.call(trainer, { X_train: y_train, y_train, gamma: 1 });
  // @ts-expect-error: a Handle<number[][]> cannot feed a number parameter
  p.call(trainer, { X_train, y_train, gamma: X_train });
  // @ts-expect-error: a required input is missing
  p.call(trainer, { X_train, y_train });
  // @ts-expect-error: a step with required inputs needs arguments
  p.call(trainer);
  // @ts-expect-error: an input the step does not take
  p.call(loader, { extra: 1 });
});

// @ts-expect-error: declared outputs must name exactly the returned fields
loader.outputs({ X_train: 'auto' });
// @ts-expect-error: a codec for another type
loader.outputs({ X_train: t.string, X_test: 'auto', y_train: 'auto', y_test: 'auto' });
// @ts-expect-error: enableCache is a boolean
trainer.withOptions({ enableCache: 'yes' });

export const typedRun = async (): Promise<void> => {
  const runner = createRunner();
  const run = await runner.run(ok, { gamma: 0.1 });
  expectType<Equal<typeof run, Run<{ readonly model: { acc: number } }>>>();
  const model = await run.output('model');
  expectType<Equal<typeof model, { acc: number }>>();
  // @ts-expect-error: the pipeline has no output named accuracy
  await run.output('accuracy');
  // @ts-expect-error: gamma is a number
  await runner.run(ok, { gamma: 'high' });
  await runner.run(ok); // every parameter is optional
  const needsParams = pipeline('needs', (p, { n }: { n: number }) => ({ x: p.call(trainer, { X_train: [[n]], y_train: [n], gamma: n }) }));
  // @ts-expect-error: required parameters must be passed
  await runner.run(needsParams);
  await runner.run(needsParams, { n: 1 });
};
