/**
 * What a step function's first parameter says about the names it reads, read from the text of
 * the function that runs (`Function.prototype.toString`): the names its destructuring pattern
 * binds, and the defaults it gives them. A default written as a constant (a literal, a negated
 * number, an array or object of constants, `undefined`) is a value the key can use: passing it
 * explicitly and leaving it out then give the same key. Any other default (a variable, a call)
 * cannot be known before the function runs.
 *
 * @packageDocumentation
 */
import type * as TS from 'typescript';
import { typescript } from '../fingerprint/syntax';
import { defineOwn, ownValue } from '../utils/own-property';

// model

/**
 * The names and defaults of a step function's first parameter.
 *
 * @example
 * // function train({ X, gamma = 0.001, seed = SEED }: {...})
 * const d: ParameterDefaults = { names: new Set(['X', 'gamma', 'seed']), known: new Map([['gamma', 0.001]]), unknown: new Map([['seed', 'SEED']]) };
 */
export interface ParameterDefaults {
  /**
   * Every name the pattern reads, or `undefined` when they cannot all be known: the parameter is
   * not a destructuring pattern, it has a rest element (`...rest`) or a computed key, or the text
   * cannot be read.
   */
  readonly names: ReadonlySet<string> | undefined;
  /** Defaults written as constants, by name, with their values. */
  readonly known: ReadonlyMap<string, unknown>;
  /** Defaults that are not constants, by name, with their text. */
  readonly unknown: ReadonlyMap<string, string>;
}

const NOTHING: ParameterDefaults = Object.freeze({ names: undefined, known: new Map<string, unknown>(), unknown: new Map<string, string>() });

// constants

/** A marker for an expression that is not a constant. */
const NOT_CONSTANT: unique symbol = Symbol('not constant');

/** The value of a constant expression, or {@link NOT_CONSTANT}. */
const constantValue = (e: TS.Expression): unknown => {
  const ts = typescript();
  if (ts.isParenthesizedExpression(e) || ts.isAsExpression(e) || ts.isSatisfiesExpression(e) || ts.isNonNullExpression(e)) return constantValue(e.expression);
  if (ts.isNumericLiteral(e)) return Number(e.text);
  if (ts.isBigIntLiteral(e)) return BigInt(e.text.slice(0, -1));
  if (ts.isStringLiteral(e) || ts.isNoSubstitutionTemplateLiteral(e)) return e.text;
  if (e.kind === ts.SyntaxKind.TrueKeyword) return true;
  if (e.kind === ts.SyntaxKind.FalseKeyword) return false;
  if (e.kind === ts.SyntaxKind.NullKeyword) return null;
  if (ts.isIdentifier(e) && e.text === 'undefined') return undefined;
  if (ts.isPrefixUnaryExpression(e) && (e.operator === ts.SyntaxKind.MinusToken || e.operator === ts.SyntaxKind.PlusToken)) {
    const operand = constantValue(e.operand);
    if (typeof operand === 'number') return e.operator === ts.SyntaxKind.MinusToken ? -operand : operand;
    if (typeof operand === 'bigint' && e.operator === ts.SyntaxKind.MinusToken) return -operand;
    return NOT_CONSTANT;
  }
  if (ts.isArrayLiteralExpression(e)) {
    const values: unknown[] = [];
    for (const element of e.elements) {
      if (ts.isSpreadElement(element) || ts.isOmittedExpression(element)) return NOT_CONSTANT;
      const value = constantValue(element);
      if (value === NOT_CONSTANT) return NOT_CONSTANT;
      values.push(value);
    }
    return values;
  }
  if (ts.isObjectLiteralExpression(e)) {
    const value: Record<string, unknown> = {};
    for (const property of e.properties) {
      if (!ts.isPropertyAssignment(property)) return NOT_CONSTANT;
      const name = property.name;
      const key = ts.isIdentifier(name) || ts.isStringLiteral(name) || ts.isNumericLiteral(name) ? name.text : undefined;
      if (key === undefined || key === '__proto__') return NOT_CONSTANT;
      const inner = constantValue(property.initializer);
      if (inner === NOT_CONSTANT) return NOT_CONSTANT;
      value[key] = inner;
    }
    return value;
  }
  return NOT_CONSTANT;
};

// reading

/** The first parameter of the function in `text`, however the function is written (declaration, arrow, method). */
const firstParameter = (text: string): TS.ParameterDeclaration | undefined => {
  const ts = typescript();
  // A method's text (`train({ x }) {}`) is not an expression on its own; inside an object literal it is.
  for (const wrapped of [`(${text})`, `({ ${text} })`]) {
    const sf = ts.createSourceFile('step.js', wrapped, ts.ScriptTarget.Latest, true, ts.ScriptKind.JS);
    const [statement] = sf.statements;
    if (sf.statements.length !== 1 || statement === undefined || !ts.isExpressionStatement(statement)) continue;
    let e: TS.Expression = statement.expression;
    while (ts.isParenthesizedExpression(e)) e = e.expression;
    let fn: TS.SignatureDeclaration | undefined;
    if (ts.isFunctionExpression(e) || ts.isArrowFunction(e)) fn = e;
    else if (ts.isObjectLiteralExpression(e) && e.properties.length === 1 && e.properties[0] !== undefined && ts.isMethodDeclaration(e.properties[0])) fn = e.properties[0];
    if (fn === undefined || (sf as unknown as { parseDiagnostics?: readonly unknown[] }).parseDiagnostics?.length) continue;
    return fn.parameters[0];
  }
  return undefined;
};

/** @internal The names and defaults of the first parameter of the function in `text`, read with the TypeScript compiler. */
export const readWithCompiler = (text: string): ParameterDefaults => {
  const ts = typescript();
  let parameter: TS.ParameterDeclaration | undefined;
  try {
    parameter = firstParameter(text);
  } catch {
    return NOTHING;
  }
  if (parameter === undefined || !ts.isObjectBindingPattern(parameter.name)) return NOTHING;
  const names = new Set<string>();
  const known = new Map<string, unknown>();
  const unknown = new Map<string, string>();
  let complete = true;
  for (const element of parameter.name.elements) {
    if (element.dotDotDotToken !== undefined) {
      complete = false;
      continue;
    }
    const property = element.propertyName;
    const key =
      property === undefined
        ? ts.isIdentifier(element.name)
          ? element.name.text
          : undefined
        : ts.isIdentifier(property) || ts.isStringLiteral(property) || ts.isNumericLiteral(property)
          ? property.text
          : undefined;
    if (key === undefined) {
      complete = false;
      continue;
    }
    names.add(key);
    if (element.initializer === undefined) continue;
    const value = constantValue(element.initializer);
    if (value === NOT_CONSTANT) unknown.set(key, element.initializer.getText());
    else known.set(key, value);
  }
  return Object.freeze({ names: complete ? names : undefined, known, unknown });
};

const IDENTIFIER = '[A-Za-z_$][\\w$]*';
/** What comes before the parameter list: `async`, `function`, `*`, a name (a function's or a method's), or nothing (an arrow). */
const HEAD = new RegExp(`^(?:async\\s+)?(?:function\\s*\\*?\\s*(?:${IDENTIFIER})?\\s*|${IDENTIFIER}\\s*)?\\(`);
const NO_PARAMETER = /^\s*\)/;
const PLAIN_PARAMETER = new RegExp(`^\\s*${IDENTIFIER}\\s*[,)=]`);
/** An object pattern without nested patterns, strings, comments or parentheses. */
const SIMPLE_PATTERN = /^\s*\{([^{}()[\]'"`/\\]*)\}\s*[,)=]/;
const ELEMENT = new RegExp(`^(${IDENTIFIER})(?:\\s*:\\s*${IDENTIFIER})?(?:\\s*=\\s*(-?\\d+(?:\\.\\d+)?(?:[eE][+-]?\\d+)?|true|false|null|undefined))?$`);
const KEYWORDS: Readonly<Record<string, unknown>> = { true: true, false: false, null: null, undefined };

/**
 * @internal The names and defaults of the first parameter of the function in `text`, read
 * without the TypeScript compiler (which takes a few hundred milliseconds to load) when the
 * parameter is simple: none, a plain name, or an object pattern of names (renamed or not) whose
 * defaults are numbers, booleans, `null` or `undefined`. `undefined` for anything else, which
 * {@link readWithCompiler} reads; where both read, they agree (a property test checks it).
 */
export const readWithoutCompiler = (text: string): ParameterDefaults | undefined => {
  const head = HEAD.exec(text);
  if (head === null) return undefined;
  const rest = text.slice(head[0].length);
  if (NO_PARAMETER.test(rest) || PLAIN_PARAMETER.test(rest)) return NOTHING;
  const pattern = SIMPLE_PATTERN.exec(rest);
  if (pattern === null) return undefined;
  const names = new Set<string>();
  const known = new Map<string, unknown>();
  const elements = (pattern[1] as string).split(',').map((e) => e.trim());
  if (elements.length > 1 && elements[elements.length - 1] === '') elements.pop(); // a trailing comma
  for (const element of elements) {
    const parsed = ELEMENT.exec(element);
    if (parsed === null) return undefined;
    const [, key = '', value] = parsed;
    names.add(key);
    if (value !== undefined) known.set(key, Object.hasOwn(KEYWORDS, value) ? KEYWORDS[value] : Number(value));
  }
  return Object.freeze({ names, known, unknown: new Map<string, string>() });
};

const read = (fn: Function): ParameterDefaults => {
  let text: string;
  try {
    text = Function.prototype.toString.call(fn);
  } catch {
    return NOTHING;
  }
  return readWithoutCompiler(text) ?? readWithCompiler(text);
};

const cache = new WeakMap<Function, ParameterDefaults>();

/**
 * The names a step function's first parameter reads and the defaults it gives them, read once per
 * function from its text (never throws: what cannot be read is left out).
 *
 * @example
 * parameterDefaultsOf(function train({ X, gamma = 0.001 }: { X: number[][]; gamma?: number }) { return X.length * gamma; });
 * // { names: Set { 'X', 'gamma' }, known: Map { 'gamma' => 0.001 }, unknown: Map {} }
 */
export const parameterDefaultsOf = (fn: Function): ParameterDefaults => {
  let found = cache.get(fn);
  if (found === undefined) {
    found = read(fn);
    cache.set(fn, found);
  }
  return found;
};

/**
 * The parameters a step runs with, as far as they can be known before it runs: the ones passed,
 * with each left out (or passed as `undefined`) replaced by its constant default. Names in `skip`
 * (inputs wired from upstream steps, ignored inputs) are left out.
 *
 * @example
 * effectiveParameters({ X: 1 }, parameterDefaultsOf(train), new Set()); // { X: 1, gamma: 0.001 }
 */
export const effectiveParameters = (passed: Readonly<Record<string, unknown>>, defaults: ParameterDefaults, skip: ReadonlySet<string>): Record<string, unknown> => {
  const effective: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(passed)) if (!skip.has(name)) defineOwn(effective, name, value);
  for (const [name, value] of defaults.known) {
    if (!skip.has(name) && ownValue(effective, name) === undefined && value !== undefined) defineOwn(effective, name, value);
  }
  return effective;
};
