/**
 * A short, readable rendering of any value for messages, written by the shared value walk: it
 * never throws (a throwing getter, a Proxy, a cycle or a value nested 100,000 levels deep end
 * the preview, with `…`), and stops reading as soon as it has enough text.
 *
 * @packageDocumentation
 */
import * as E from 'fp-ts/Either';
import { HOLE, isPlainObject, walkValue, type Container, type Visitor, type Walk } from '../encoding/walk';

/** A value the walk does not go into, as text: JSON where JSON says it, the value's own words elsewhere. */
const leafText = (value: unknown): string => {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'bigint':
      return `${value}n`;
    case 'number':
      return Object.is(value, -0) ? '-0' : String(value);
    case 'undefined':
      return 'undefined';
    case 'symbol':
      return value === HOLE ? '<empty>' : String(value);
    default:
      try {
        return JSON.stringify(value) ?? String(value);
      } catch {
        return Object.prototype.toString.call(value);
      }
  }
};

class Previewer implements Visitor {
  text = '';

  constructor(private readonly max: number) {}

  private write(text: string, walk: Walk): void {
    this.text += text;
    if (this.text.length > this.max) walk.stop();
  }

  enter(value: unknown, walk: Walk): Container | undefined {
    if (Array.isArray(value)) {
      this.write('[', walk);
      return { kind: 'array', value };
    }
    if (isPlainObject(value)) {
      this.write('{', walk);
      return { kind: 'object', value, keys: Object.keys(value) };
    }
    return void this.write(leafText(value), walk);
  }

  beforeChild(container: Container, index: number, walk: Walk): void {
    if (index > 0) this.write(',', walk);
    if (container.kind === 'object') this.write(`${JSON.stringify(container.keys[index])}:`, walk);
  }

  leave(container: Container, walk: Walk): void {
    this.write(container.kind === 'array' ? ']' : '}', walk);
  }
}

/**
 * A short, readable rendering of any value for messages: JSON-like, with `NaN`, `-0`, `2n` and
 * `undefined` written as such, cut to `max` characters with `…`.
 *
 * @example
 * preview('yes'); // '"yes"'
 * preview({ gamma: NaN, layers: [64, 32] }); // '{"gamma":NaN,"layers":[64,32]}'
 */
export const preview = (value: unknown, max = 60): string => {
  const previewer = new Previewer(max);
  const walked = walkValue(value, previewer);
  const text = E.isRight(walked) ? previewer.text : previewer.text === '' ? `<${walked.left.reason}>` : `${previewer.text}…`;
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
};
