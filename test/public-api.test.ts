/**
 * The public API is deliberate: the names the package root exports are listed here, so adding
 * or removing one is a visible change to this file; and each of them is documented with an
 * `@example` where it is declared.
 */
import * as path from 'node:path';
import ts from 'typescript';
import * as api from '../src/index';

const VALUES = [
  'DEFAULT_OUTPUT',
  'StepcacheError',
  'applyRunConfig',
  'compareRuns',
  'consoleLogger',
  'createFileArtifactStore',
  'createDashboard',
  'createFileStepLock',
  'createKeyvMetadataStore',
  'createMemoryStepLock',
  'createPostgresMetadataStore',
  'createPostgresStepLock',
  'createRunner',
  'createS3ArtifactStore',
  'createSqliteMetadataStore',
  'createWorker',
  'schedule',
  'listSchedules',
  'removeSchedule',
  'queueExecutor',
  'displayRun',
  'loadRunConfig',
  'named',
  'pipeline',
  'decideCache',
  'progressLogger',
  'readRunConfig',
  'resolveSettings',
  'runToHtmlTable',
  'runToMermaid',
  'runToSvg',
  'runToTextTree',
  'settingsLayers',
  'silentLogger',
  'step',
  'withOptions',
];

const TYPES = [
  'AcquireOptions', 'AnyOutputSpec', 'AnyPipeline', 'AnyStep', 'ArtifactDescriptor', 'ArtifactKind', 'ArtifactLoadError', 'ArtifactRef',
  'ArtifactStore', 'ArtifactStoreOptions', 'CacheAdmin', 'CacheDecision', 'CacheEntry', 'CacheEntryInfo', 'CacheLookup', 'CacheSettingName', 'CacheSettings', 'CallArgs',
  'CallSite', 'ComparisonRow', 'DamagedRecord', 'Dashboard', 'DashboardOptions', 'DashboardResponse', 'DashboardServer', 'ExecutionReason', 'ExecutionProgress', 'ExecutionRequest', 'ExecutionResult', 'ExecutionStore', 'Executor',
  'FileStepLockOptions', 'Handle', 'InputArtifact', 'JsonValue', 'KeyChange', 'LockHolder', 'LockWait', 'Logger', 'MemoryStepLockOptions',
  'MermaidOptions', 'MetadataStore', 'MetadataStoreOptions', 'OutputFormat', 'OutputSpecFor', 'Pipeline', 'PipelineBuilder', 'PipelineOutputValues',
  'PipelineOutputs', 'PipelineParams', 'PipelineSettings', 'Plan', 'PlannedStep', 'PostgresConnection', 'PostgresMetadataStoreOptions',
  'PostgresStepLockOptions', 'PostgresTimeouts', 'ProgressLoggerOptions', 'PruneOptions', 'PruneReport', 'PutEntryOptions', 'ReleaseLock',
  'RenderableRun', 'ResolvedCacheSettings', 'Run', 'RunComparison', 'RunConfig', 'RunConfigError', 'RunConfigSettingName', 'RunConfigSettings',
  'RunEdge', 'RunEvent', 'RunEventType', 'RunLayoutOptions', 'RunOwner', 'RunParams', 'RunPruneReport', 'RunQuery', 'RunRecord', 'RunRetention', 'RunSubscriber', 'RunSummary', 'RunWarningKind', 'Runner', 'RunnerOptions',
  'S3ArtifactStore', 'S3ArtifactStoreOptions', 'SettingSource', 'SettingsLayer', 'SettingsLayerName', 'SettingsResolution', 'Step',
  'StepExplanation', 'StepHandles', 'StepIdentity', 'StepInput', 'StepLock', 'StepOutput', 'StepOutputs', 'StepRunRecord', 'StepSettingsSources',
  'StepStatus', 'StepcacheErrorCode', 'StepcacheErrorDetails', 'SvgOptions', 'Wired', 'QueueExecutor', 'QueueExecutorOptions', 'WorkerOptions',
  'StepWorker', 'StepJobProgress', 'ScheduleTiming', 'ScheduleOptions', 'ScheduleInfo',
];

const INDEX = path.join(__dirname, '..', 'src', 'index.ts');
const program = ts.createProgram([INDEX], { strict: true, noEmit: true, skipLibCheck: true, module: ts.ModuleKind.CommonJS, moduleResolution: ts.ModuleResolutionKind.Node10, target: ts.ScriptTarget.ES2022 });
const checker = program.getTypeChecker();
const root = checker.getSymbolAtLocation(program.getSourceFile(INDEX) as ts.SourceFile) as ts.Symbol;
const exported = checker.getExportsOfModule(root);

describe('the public API', () => {
  it('exports exactly these runtime values', () => {
    expect(Object.keys(api).sort()).toEqual([...VALUES].sort());
  });

  it('exports exactly these names, types included', () => {
    expect(exported.map((s) => s.name).sort()).toEqual([...VALUES, ...TYPES].sort());
  });

  it('documents every export with an @example where it is declared', () => {
    const undocumented = exported.filter((s) => {
      const target = s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s;
      const tags = [...target.getJsDocTags(checker), ...(target.declarations ?? []).flatMap((d) => ts.getJSDocTags(d).map((t) => ({ name: t.tagName.text })))];
      return !tags.some((t) => t.name === 'example');
    });
    expect(undocumented.map((s) => s.name)).toEqual([]);
  });
});
