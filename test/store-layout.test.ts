/**
 * Where the embedded store keeps what, and which directory it is in.
 */
import * as path from 'node:path';
import { storeLayout } from '../src/store/layout';

describe('storeLayout', () => {
  it('takes the directory given, resolved against cwd', () => {
    expect(storeLayout('cache', { STEPCACHE_DIR: '/elsewhere' }, '/work')).toEqual({
      dir: '/work/cache',
      metadataFile: '/work/cache/metadata.sqlite',
      artifactsDir: '/work/cache/artifacts',
      locksDir: '/work/cache/locks',
      fingerprintsFile: '/work/cache/fingerprints.json',
    });
  });

  it('falls back on STEPCACHE_DIR, then on ./.stepcache', () => {
    expect(storeLayout(undefined, { STEPCACHE_DIR: '/data/cache' }, '/work').dir).toBe('/data/cache');
    expect(storeLayout(undefined, {}, '/work').dir).toBe('/work/.stepcache');
    expect(storeLayout().dir).toBe(path.resolve(process.env['STEPCACHE_DIR'] ?? '.stepcache'));
  });
});
