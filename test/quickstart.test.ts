import { silentLogger } from '../src';
import { main } from '../examples/quickstart';
import { removeDir, tempDir } from './support/fixtures';

describe('the README quickstart (examples/quickstart.ts)', () => {
  it('executes, then serves from cache, then re-runs only the step whose parameter changed', async () => {
    const dir = tempDir();
    const log = jest.spyOn(console, 'log').mockImplementation(() => undefined);
    try {
      const [first, second, third] = await main({ dir, logger: silentLogger });
      expect([first.steps.load_numbers?.status, first.steps.scale?.status]).toEqual(['executed', 'executed']);
      expect([second.steps.load_numbers?.status, second.steps.scale?.status]).toEqual(['cached', 'cached']);
      expect([third.steps.load_numbers?.status, third.steps.scale?.status]).toEqual(['cached', 'executed']);
      expect(log).toHaveBeenCalledWith('total: 1498500');
    } finally {
      log.mockRestore();
      removeDir(dir);
    }
  });
});
