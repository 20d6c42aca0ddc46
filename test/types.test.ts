import * as path from 'node:path';
import ts from 'typescript';

const root = path.resolve(__dirname, '..');

const compilerOptions = (): ts.CompilerOptions => {
  const configFile = ts.readConfigFile(path.join(root, 'tsconfig.json'), ts.sys.readFile);
  return ts.parseJsonConfigFileContent(configFile.config, ts.sys, root).options;
};

/** Type-checks files (real ones, plus virtual ones given as text) and returns the diagnostics. */
const typeCheck = (files: readonly string[], virtual: Record<string, string> = {}): readonly ts.Diagnostic[] => {
  const options = { ...compilerOptions(), noEmit: true };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, language) =>
    virtual[name] !== undefined ? ts.createSourceFile(name, virtual[name] as string, language) : getSourceFile(name, language);
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => virtual[name] !== undefined || fileExists(name);
  const program = ts.createProgram([...files, ...Object.keys(virtual)], options, host);
  return ts.getPreEmitDiagnostics(program);
};

const render = (diagnostics: readonly ts.Diagnostic[]): string[] =>
  diagnostics.map((d) => `${d.file ? path.relative(root, d.file.fileName) : ''}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`);

describe('public types', () => {
  it('the API typings compile: type equalities hold and every @ts-expect-error is still an error', () => {
    expect(render(typeCheck([path.join(root, 'test/typings/api.ts')]))).toEqual([]);
  });

  it('wiring a handle of the wrong type into a step input is a compile error', () => {
    const file = path.join(root, 'test/typings/virtual-wrong-handle.ts');
    const diagnostics = typeCheck([], {
      [file]: `
        import { pipeline, step } from '../../src';
        const loader = step(function loader() { return { xs: [1, 2], name: 'n' }; }).outputs({ xs: 'auto', name: 'auto' });
        const sum = step(function sum({ xs }: { xs: number[] }) { return xs.length; });
        export const p = pipeline('p', (p) => { const { name } = p.call(loader); return { s: p.call(sum, { xs: name }) }; });
      `,
    });
    expect(diagnostics).toHaveLength(1);
    expect(render(diagnostics)[0]).toMatch(/Type 'Handle<string>' is not assignable to type 'number\[\] \| Handle<number\[\]>'/);
  });
});
