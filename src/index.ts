/**
 * stepcache: cached steps for machine-learning pipelines.
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
export { step, named, withOptions, DEFAULT_OUTPUT } from './step/step';
export type { Step, AnyStep, Handle, OutputFormat, OutputSpecFor, AnyOutputSpec, StepHandles, StepInput, StepOutput } from './step/step';
export { pipeline, compilePipeline } from './pipeline/pipeline';
export type { Pipeline, AnyPipeline, PipelineBuilder, PipelineOutputs, PipelineParams, PipelineOutputValues, PipelineGraph, GraphNode, OutputRef, PipelineDefinitionError, Wired, CallArgs } from './pipeline/pipeline';
export { createRunner } from './runner/runner';
export type { Runner, RunnerOptions, Run, RunParams } from './runner/runner';
export { consoleLogger, silentLogger } from './runner/logger';
export type { Logger } from './runner/logger';
export { decideCache, resolveSettings, mergeSettings, validateSettings, SETTINGS_LAYERS, DEFAULT_CACHE_SETTINGS } from './settings/settings';
export type { CacheSettings, ResolvedCacheSettings, SettingsLayer, SettingsLayerName, SettingSource, CacheLookup, CacheDecision } from './settings/settings';
export { computeStepKey, KEY_FORMAT_VERSION } from './cache/key';
export type { StepKeyParts, UnencodableParameter } from './cache/key';
export { encodeCanonical } from './encoding/canonical';
export type { Unencodable } from './encoding/canonical';
export { keyHashFunction, createContentHasher } from './hash/hashers';
export { createFileArtifactStore } from './store/artifact-store';
export type { ArtifactStore, ArtifactRef, ArtifactLoadError } from './store/artifact-store';
export { createS3ArtifactStore } from './store/s3-artifact-store';
export type { S3ArtifactStore, S3ArtifactStoreOptions } from './store/s3-artifact-store';
export { createKeyvMetadataStore, createSqliteMetadataStore } from './store/metadata-store';
export type { MetadataStore } from './store/metadata-store';
export type { CacheEntry, RunRecord, StepRunRecord, StepStatus } from './store/records';
export { serializeOutput, deserializeOutput, artifactDigest } from './store/serialize';
export type { ArtifactDescriptor, ArtifactKind } from './store/serialize';
export { StepcacheError } from './errors';
export type { StepcacheErrorCode, StepcacheErrorDetails } from './errors';

// run configuration files (JSON or YAML): runtime settings, per-step settings and parameters
export { decodeRunConfig, parseRunConfigText, loadRunConfig, readRunConfig, applyRunConfig, checkConfigSteps, RUN_CONFIG_SETTING_NAMES } from './config/run-config';
export type { RunConfig, RunConfigError, RunConfigSettings, RunConfigSettingName, JsonValue } from './config/run-config';

// render: pictures of runs (Mermaid, SVG laid out with ELK, text tree, HTML table, run comparison)
export { runToMermaid, runToSvg, runToTextTree, runToHtmlTable, compareRuns, displayRun, layoutRun, edgesOf, withEdges, edgeLabel, formatSpeedUp, STATUS_STYLES } from './render';
export type { RunEdge, RenderableRun, NodeStatus, RunComparison, ComparisonRow, RunLayout, RunLayoutOptions, NodeLayout, EdgeLayout, MermaidOptions, SvgOptions } from './render';

// Types the public API refers to.
export type { PipelineSettings, CacheSettingName, InvalidSetting } from './settings/settings';
export type { CacheAdmin, CacheEntryInfo, PruneOptions, PruneReport } from './cache/maintenance';
export type { ExecutionReason, StepExplanation } from './cache/reasons';
export type { KeyComponents, KeyChange } from './cache/components';
export type { Plan, PlannedStep } from './runner/runner';
export { createFileStepLock, createMemoryStepLock } from './lock';
export type { StepLock, ReleaseLock, AcquireOptions, FileStepLockOptions } from './lock';
export type { CallSite, CodeFingerprint, FingerprintPart } from './fingerprint';
export type { ContentHasher } from './hash/hashers';
export type { UndecodableArtifact, SerializedOutput } from './store/serialize';
export { progressLogger } from './cli/progress';
