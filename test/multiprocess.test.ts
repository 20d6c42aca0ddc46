import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { removeDir, tempDir } from './support/fixtures';

const root = path.resolve(__dirname, '..');
const PROCESSES = 8;

const runChild = (dir: string, log: string): Promise<{ code: number | null; stdout: string; stderr: string }> =>
  new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'test/support/multi-run.ts'), dir, log], { cwd: root });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });

describe('several processes on one store', () => {
  it(`${PROCESSES} processes running the same pipeline at once execute each step key once, with no store error`, async () => {
    const dir = tempDir();
    const log = path.join(dir, 'executions.log');
    try {
      const results = await Promise.all(Array.from({ length: PROCESSES }, () => runChild(path.join(dir, 'store'), log)));
      for (const r of results) {
        expect(r.stderr).toBe('');
        expect(r.code).toBe(0);
      }
      const executions = fs.readFileSync(log, 'utf8').trim().split('\n').map((line) => line.split(' ')[0]);
      expect(executions.sort()).toEqual(['load_rows', 'scale_rows', 'summarize_rows']);
      const outputs = results.map((r) => JSON.parse(r.stdout.trim()) as { statuses: Record<string, string>; summary: unknown });
      // everyone got the same result; exactly one process executed each step, the others used its entry
      expect(new Set(outputs.map((o) => JSON.stringify(o.summary))).size).toBe(1);
      for (const name of ['load_rows', 'scale_rows', 'summarize_rows']) {
        expect(outputs.filter((o) => o.statuses[name] === 'executed')).toHaveLength(1);
        expect(outputs.filter((o) => o.statuses[name] === 'cached')).toHaveLength(PROCESSES - 1);
      }
    } finally {
      removeDir(dir);
    }
  }, 120_000);
});
