/**
 * stepcache: cached steps for machine-learning pipelines.
 *
 * The package root is the public API, chosen name by name (test/public-api.test.ts lists it, so
 * a change to it is deliberate): steps and pipelines, the runner and what it returns, settings,
 * errors, loggers, run configuration files, pictures of runs, and the stores and locks a runner
 * can be given. How keys are made and values encoded, stored and checked stays inside.
 *
 * @example
 * import { step, pipeline, createRunner } from 'stepcache';
 * const double = step(function double({ x }: { x: number }) { return 2 * x; });
 * const p = pipeline('demo', (p, { x = 1 }: { x?: number }) => ({ y: p.call(double, { x }) }));
 * const run = await createRunner().run(p, { x: 21 });
 * await run.output('y'); // 42
 *
 * @packageDocumentation
 */

// steps and pipelines
export { step, named, withOptions, DEFAULT_OUTPUT } from './step/step';
export type { Step, AnyStep, Handle, OutputFormat, OutputSpecFor, AnyOutputSpec, StepHandles, StepInput, StepOutput } from './step/step';
export { pipeline } from './pipeline/pipeline';
export type { Pipeline, AnyPipeline, PipelineBuilder, PipelineOutputs, PipelineParams, PipelineOutputValues, Wired, CallArgs } from './pipeline/pipeline';
export type { CallSite } from './fingerprint';

// the runner, and what it returns
export { createRunner } from './runner/runner';
export type { Runner, RunnerOptions, Run, RunParams, Plan, PlannedStep } from './runner/runner';
export type { RunEvent, RunEventType, RunSubscriber, RunWarningKind, StepOutputs } from './runner/events';
export type { Executor, ExecutionRequest, ExecutionResult, ExecutionStore, ExecutionProgress, StepIdentity, InputArtifact } from './runner/executor';
export type { CacheEntry, RunRecord, StepRunRecord, StepStatus, DamagedRecord, RunOwner, RunSummary } from './store/records';
export type { RunRetention, RunPruneReport } from './store/run-retention';
export type { ExecutionReason, StepExplanation } from './cache/reasons';
export type { KeyChange } from './cache/components';
export type { CacheAdmin, CacheEntryInfo, PruneOptions, PruneReport } from './cache/maintenance';

// settings
export { settingsLayers, resolveSettings, decideCache } from './settings/settings';
export type { CacheSettings, CacheSettingName, PipelineSettings, SettingSource, SettingsLayer, SettingsLayerName, StepSettingsSources, SettingsResolution, ResolvedCacheSettings, CacheLookup, CacheDecision } from './settings/settings';

// errors
export { StepcacheError } from './errors';
export type { StepcacheErrorCode, StepcacheErrorDetails } from './errors';

// loggers
export { consoleLogger, silentLogger } from './runner/logger';
export type { Logger } from './runner/logger';
export { progressLogger } from './cli/progress';
export type { ProgressLoggerOptions } from './cli/progress';

// run configuration files (JSON or YAML): runtime settings, per-step settings and parameters
export { loadRunConfig, readRunConfig, applyRunConfig } from './config/run-config';
export type { RunConfig, RunConfigError, RunConfigSettings, RunConfigSettingName, JsonValue } from './config/run-config';

// pictures of runs (Mermaid, SVG laid out with ELK, text tree, HTML table, run comparison, notebooks)
export { runToMermaid, runToSvg, runToTextTree, runToHtmlTable, compareRuns, displayRun } from './render';
export type { RunEdge, RenderableRun, RunComparison, ComparisonRow, MermaidOptions, SvgOptions, RunLayoutOptions } from './render';

// stores and locks a runner can be given
export { createFileArtifactStore } from './store/artifact-store';
export type { ArtifactStore, ArtifactStoreOptions, ArtifactRef, ArtifactLoadError } from './store/artifact-store';
export { createS3ArtifactStore } from './store/s3-artifact-store';
export type { S3ArtifactStore, S3ArtifactStoreOptions } from './store/s3-artifact-store';
export type { ArtifactDescriptor, ArtifactKind } from './store/serialize';
export { createKeyvMetadataStore, createSqliteMetadataStore } from './store/metadata-store';
export type { MetadataStore, MetadataStoreOptions, RunQuery } from './store/metadata-store';
export { createFileStepLock, createMemoryStepLock } from './lock';
export type { StepLock, ReleaseLock, AcquireOptions, FileStepLockOptions, MemoryStepLockOptions, LockHolder, LockWait } from './lock';

// team stores on PostgreSQL: metadata in real tables, a cross-machine step lock on advisory locks
export { createPostgresMetadataStore } from './store/postgres-metadata-store';
export type { PostgresMetadataStoreOptions } from './store/postgres-metadata-store';
export type { PostgresConnection, PostgresTimeouts } from './store/postgres-connection';
export { createPostgresStepLock } from './lock/postgres-lock';
export type { PostgresStepLockOptions } from './lock/postgres-lock';
export type { PutEntryOptions } from './store/metadata-store';

// the dashboard: a local, read-only web page of a store's runs (`stepcache ui`)
export { createDashboard } from './ui';
export type { Dashboard, DashboardOptions, DashboardResponse, DashboardServer } from './ui';

// distributed execution: steps that miss the cache run on BullMQ workers (`stepcache worker`)
export { queueExecutor } from './distributed/queue-executor';
export type { QueueExecutor, QueueExecutorOptions } from './distributed/queue-executor';
export { createWorker } from './distributed/worker';
export type { WorkerOptions, StepWorker } from './distributed/worker';
export type { StepJobProgress } from './distributed/job';
// scheduled pipelines: run jobs on the queue, resolved by a worker at run time (`stepcache schedules`)
export { schedule, listSchedules, removeSchedule } from './distributed/schedule';
export type { ScheduleTiming, ScheduleOptions, ScheduleInfo } from './distributed/schedule';
