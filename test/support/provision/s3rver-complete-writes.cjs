/**
 * Loaded into s3rver's process (`node --require <this file> s3rver ...`): s3rver 3.7 answers a
 * PUT before the object's file is completely written (it resolves when the request body has been
 * read, not when the file write finishes), so a GET right after the PUT can see part of the
 * object. S3 itself is read-after-write consistent; this makes s3rver so: an object is written to
 * a temporary file next to its place and renamed into place before the PUT is answered.
 */
'use strict';
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { Readable, Transform } = require('node:stream');
const { pipeline } = require('node:stream/promises');
// the s3rver being started (its script is the program's first argument), not whichever `require` finds
const script = fs.realpathSync(process.argv[1] ?? '');
const FilesystemStore = require(path.join(path.dirname(script), '..', 'lib', 'stores', 'filesystem.js'));

FilesystemStore.prototype.putObject = async function putObject(object) {
  const objectPath = this.getResourcePath(object.bucket, object.key, 'object');
  await fs.promises.mkdir(path.dirname(objectPath), { recursive: true });
  const temporary = `${objectPath}.${process.pid}-${crypto.randomUUID()}.partial`;
  const md5 = crypto.createHash('md5');
  let size = 0;
  const counted = new Transform({
    transform(chunk, encoding, callback) {
      md5.update(chunk);
      size += chunk.length;
      callback(null, chunk);
    },
  });
  const source = Buffer.isBuffer(object.content) ? Readable.from([object.content]) : object.content;
  try {
    await pipeline(source, counted, fs.createWriteStream(temporary));
    await fs.promises.rename(temporary, objectPath);
  } catch (error) {
    await fs.promises.rm(temporary, { force: true });
    throw error;
  }
  const digest = md5.digest('hex');
  await this.putMetadata(object.bucket, object.key, object.metadata, digest);
  return { size, md5: digest };
};
