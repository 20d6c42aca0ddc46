/**
 * The input names a step's function requires, read from its first parameter and that
 * parameter's type as written in the source (no type checker): a type literal, or an interface or
 * type alias declared in the same file or imported from a relative module.
 *
 * In plain JavaScript, the parameter's JSDoc type (`@param {{ values: number[] }} input`) is read the same way.
 *
 * The answer is given only when the source says it plainly; anything else (no type annotation,
 * generics, unions, index signatures, computed keys, mapped or conditional types, a type from a
 * package) gives `undefined`. When in doubt a name is left out of `required`: a pipeline is
 * rejected on these names before it runs, so a name listed there must really be needed.
 *
 * @packageDocumentation
 * @internal
 */
import type * as TS from 'typescript';
import type { StepInputs } from './model';
import { loadModule, resolveFile, specifierKind } from './modules';
import { isTypeOnly, typescript } from './syntax';

// utils

/** How deep type references, `extends` clauses and re-exports are followed. */
const MAX_DEPTH = 16;

interface Member {
  /** Whether a value may leave the property out: `?`, or a type that accepts `undefined`. */
  readonly optional: boolean;
}

/** The properties of an object type, by name; `undefined` when they cannot be read with confidence. */
type Members = ReadonlyMap<string, Member>;

/**
 * An interface or a type alias.
 *
 * @internal
 * @example
 * const d: TypeDeclaration = findType(reference, 'Input', 0)![0]!;
 */
export type TypeDeclaration = TS.InterfaceDeclaration | TS.TypeAliasDeclaration;

const hasModifier = (node: TS.Node, kind: TS.SyntaxKind): boolean => {
  const ts = typescript();
  return ts.canHaveModifiers(node) && (ts.getModifiers(node) ?? []).some((m) => m.kind === kind);
};

/** The text of a property name written literally (`a`, `'a'`, `1`); `undefined` for computed and private names. */
const literalName = (name: TS.PropertyName): string | undefined => {
  const ts = typescript();
  if (ts.isIdentifier(name) || ts.isStringLiteralLike(name) || ts.isNumericLiteral(name)) return name.text;
  return undefined;
};

/** The statements of a node that can declare types: a source file, a block, a namespace body, a `case`. */
const statementsOf = (node: TS.Node): readonly TS.Statement[] | undefined => {
  const ts = typescript();
  if (ts.isSourceFile(node) || ts.isBlock(node) || ts.isModuleBlock(node) || ts.isCaseClause(node) || ts.isDefaultClause(node)) return node.statements;
  return undefined;
};

/** The interfaces and type aliases named `name` among `statements` (several interfaces merge). */
const typeDeclarationsIn = (statements: readonly TS.Statement[], name: string): TypeDeclaration[] => {
  const ts = typescript();
  return statements.filter((s): s is TypeDeclaration => (ts.isInterfaceDeclaration(s) || ts.isTypeAliasDeclaration(s)) && s.name.text === name);
};

/** Whether `statements` declare a class, an enum or a namespace named `name`: a type this module does not read. */
const declaresOtherType = (statements: readonly TS.Statement[], name: string): boolean => {
  const ts = typescript();
  return statements.some((s) => (ts.isClassDeclaration(s) || ts.isEnumDeclaration(s) || ts.isModuleDeclaration(s)) && s.name?.text === name);
};

// resolution

/**
 * Reads the properties of type syntax, following type references within `depth`. `seen` holds
 * the declarations being read, so that a cycle gives `undefined` instead of looping.
 */
const membersOf = (type: TS.TypeNode, depth: number, seen: Set<TS.Node>): Members | undefined => {
  const ts = typescript();
  if (depth > MAX_DEPTH) return undefined;
  if (ts.isParenthesizedTypeNode(type)) return membersOf(type.type, depth, seen);
  if (ts.isTypeLiteralNode(type)) return membersOfElements(type.members, depth);
  if (ts.isIntersectionTypeNode(type)) {
    const all = type.types.map((t) => membersOf(t, depth + 1, seen));
    return all.every((m): m is Members => m !== undefined) ? intersect(all) : undefined;
  }
  if (ts.isTypeReferenceNode(type)) {
    if (type.typeArguments !== undefined && type.typeArguments.length > 0) return undefined;
    if (!ts.isIdentifier(type.typeName)) return undefined;
    const declarations = findType(type, type.typeName.text, depth);
    return declarations === undefined ? undefined : membersOfDeclarations(declarations, depth, seen);
  }
  return undefined;
};

/** The properties of the members of a type literal or an interface body. */
const membersOfElements = (elements: readonly TS.TypeElement[], depth: number): Members | undefined => {
  const ts = typescript();
  const members = new Map<string, Member>();
  for (const element of elements) {
    if (!ts.isPropertySignature(element) && !ts.isMethodSignature(element)) return undefined;
    const name = literalName(element.name);
    if (name === undefined) return undefined;
    const optional = element.questionToken !== undefined || (ts.isPropertySignature(element) && acceptsUndefined(element.type, depth + 1, new Set()));
    const previous = members.get(name);
    // Method overloads repeat a name: the property is optional only if every signature says so.
    members.set(name, { optional: optional && (previous?.optional ?? true) });
  }
  return members;
};

/** Properties present in any of the types; one is optional only where every type that has it says so. */
const intersect = (all: readonly Members[]): Members => {
  const members = new Map<string, Member>();
  for (const m of all) {
    for (const [name, member] of m) {
      const previous = members.get(name);
      members.set(name, { optional: member.optional && (previous?.optional ?? true) });
    }
  }
  return members;
};

/** The properties of the declarations of one type name: a type alias, or interfaces (merged, with what they extend). */
const membersOfDeclarations = (declarations: readonly TypeDeclaration[], depth: number, seen: Set<TS.Node>): Members | undefined => {
  const ts = typescript();
  if (declarations.length === 0 || declarations.some((d) => seen.has(d) || (d.typeParameters !== undefined && d.typeParameters.length > 0))) return undefined;
  const [first] = declarations;
  if (first !== undefined && ts.isTypeAliasDeclaration(first)) {
    if (declarations.length !== 1) return undefined;
    seen.add(first);
    const members = membersOf(first.type, depth + 1, seen);
    seen.delete(first);
    return members;
  }
  const parts: Members[] = [];
  for (const d of declarations) {
    if (!ts.isInterfaceDeclaration(d)) return undefined;
    seen.add(d);
    try {
      for (const clause of d.heritageClauses ?? []) {
        for (const base of clause.types) {
          if ((base.typeArguments?.length ?? 0) > 0 || !ts.isIdentifier(base.expression)) return undefined;
          const found = findType(base, base.expression.text, depth);
          const inherited = found === undefined ? undefined : membersOfDeclarations(found, depth + 1, seen);
          if (inherited === undefined) return undefined;
          parts.push(inherited);
        }
      }
      const own = membersOfElements(d.members, depth);
      if (own === undefined) return undefined;
      parts.push(own);
    } finally {
      seen.delete(d);
    }
  }
  // An interface's own members override what it extends; merged declarations each add theirs.
  const members = new Map<string, Member>();
  for (const p of parts) for (const [name, member] of p) members.set(name, member);
  return members;
};

/**
 * Whether a property's type accepts `undefined`, written as such: `undefined`, `void`, `any`,
 * `unknown`, a union with one of them, or a type alias (found like any other) for one of these.
 * A property without a type is `any`.
 */
const acceptsUndefined = (type: TS.TypeNode | undefined, depth: number, seen: Set<TS.Node>): boolean => {
  const ts = typescript();
  const K = ts.SyntaxKind;
  if (type === undefined) return true;
  if (depth > MAX_DEPTH) return false;
  switch (type.kind) {
    case K.UndefinedKeyword:
    case K.VoidKeyword:
    case K.AnyKeyword:
    case K.UnknownKeyword:
      return true;
    case K.ParenthesizedType:
      return acceptsUndefined((type as TS.ParenthesizedTypeNode).type, depth, seen);
    case K.UnionType:
      return (type as TS.UnionTypeNode).types.some((t) => acceptsUndefined(t, depth + 1, seen));
    case K.TypeReference: {
      const ref = type as TS.TypeReferenceNode;
      if (!ts.isIdentifier(ref.typeName) || (ref.typeArguments?.length ?? 0) > 0) return false;
      const found = findType(ref, ref.typeName.text, depth);
      const alias = found?.length === 1 && found[0] !== undefined && ts.isTypeAliasDeclaration(found[0]) ? found[0] : undefined;
      if (alias === undefined || seen.has(alias) || (alias.typeParameters?.length ?? 0) > 0) return false;
      seen.add(alias);
      return acceptsUndefined(alias.type, depth + 1, seen);
    }
    default:
      return false;
  }
};

/**
 * The declarations a type name written at `at` refers to: the nearest enclosing block, namespace
 * or file that declares an interface or type alias of that name, else a named import of it from a
 * relative module. `undefined` when the name is a type parameter, a class, an enum or a namespace, or not found.
 *
 * @internal
 * @example
 * findType(reference, 'Input', 0); // [InterfaceDeclaration Input]
 */
export const findType = (at: TS.Node, name: string, depth: number): readonly TypeDeclaration[] | undefined => {
  const ts = typescript();
  for (let scope: TS.Node | undefined = at.parent; scope !== undefined; scope = scope.parent) {
    const typeParameters = (scope as { readonly typeParameters?: TS.NodeArray<TS.TypeParameterDeclaration> }).typeParameters;
    if (typeParameters?.some((p) => p.name.text === name) === true) return undefined;
    if (ts.isMappedTypeNode(scope) || ts.isConditionalTypeNode(scope)) return undefined;
    const statements = statementsOf(scope);
    if (statements === undefined) continue;
    if (declaresOtherType(statements, name)) return undefined;
    const found = typeDeclarationsIn(statements, name);
    if (found.length > 0) return found;
    if (ts.isSourceFile(scope)) return importedType(scope, name, depth);
  }
  return undefined;
};

/** The declarations of a type imported by name (`import { X }`, `import type { X as Y }`) from a relative module. */
const importedType = (sf: TS.SourceFile, name: string, depth: number): readonly TypeDeclaration[] | undefined => {
  const ts = typescript();
  for (const s of sf.statements) {
    if (!ts.isImportDeclaration(s) || !ts.isStringLiteralLike(s.moduleSpecifier)) continue;
    const named = s.importClause?.namedBindings;
    if (named === undefined || !ts.isNamedImports(named)) continue;
    const element = named.elements.find((e) => e.name.text === name);
    if (element === undefined) continue;
    const imported = element.propertyName === undefined ? name : literalName(element.propertyName as TS.PropertyName);
    return imported === undefined ? undefined : exportedType(sf.fileName, s.moduleSpecifier.text, imported, depth + 1);
  }
  return undefined;
};

/** The declarations of the type exported as `name` by the module `specifier` names, through re-exports. */
const exportedType = (from: string, specifier: string, name: string, depth: number): readonly TypeDeclaration[] | undefined => {
  const ts = typescript();
  if (depth > MAX_DEPTH || specifierKind(specifier) !== 'relative') return undefined;
  const file = resolveFile(from, specifier);
  const sf = file === undefined ? undefined : loadModule(file)?.sourceFile;
  if (sf === undefined || declaresOtherType(sf.statements, name)) return undefined;
  const declared = typeDeclarationsIn(sf.statements, name);
  if (declared.some((d) => hasModifier(d, ts.SyntaxKind.ExportKeyword) && !hasModifier(d, ts.SyntaxKind.DefaultKeyword))) return declared;
  for (const s of sf.statements) {
    if (!ts.isExportDeclaration(s) || s.exportClause === undefined || !ts.isNamedExports(s.exportClause)) continue;
    const element = s.exportClause.elements.find((e) => e.name.text === name);
    if (element === undefined) continue;
    const local = element.propertyName === undefined ? name : literalName(element.propertyName as TS.PropertyName);
    if (local === undefined) return undefined;
    if (s.moduleSpecifier !== undefined) return ts.isStringLiteralLike(s.moduleSpecifier) ? exportedType(sf.fileName, s.moduleSpecifier.text, local, depth + 1) : undefined;
    const here = typeDeclarationsIn(sf.statements, local);
    return here.length > 0 ? here : importedType(sf, local, depth);
  }
  for (const s of sf.statements) {
    if (!ts.isExportDeclaration(s) || s.exportClause !== undefined || s.moduleSpecifier === undefined || !ts.isStringLiteralLike(s.moduleSpecifier)) continue;
    const found = exportedType(sf.fileName, s.moduleSpecifier.text, name, depth + 1);
    if (found !== undefined) return found;
  }
  return undefined;
};

// inputs

const sorted = (names: Iterable<string>): readonly string[] => Object.freeze([...new Set(names)].sort());

const inputsOf = (required: Iterable<string>, members: Members): StepInputs => Object.freeze({ required: sorted(required), known: sorted(members.keys()) });

/**
 * The input names a step's function requires and knows, read from its first parameter (a
 * `this` parameter does not count), or `undefined` when the source does not say them plainly.
 *
 * - No parameter: nothing required, nothing known.
 * - A destructuring pattern `{ a, b = 1, c: alias }` typed with an object type: a name is required
 *   when the type's property is neither optional (`?`) nor accepting `undefined`, and its binding
 *   has no default. A rest element (`...rest`) makes the type's other required properties required.
 * - An identifier typed with an object type: the type's required properties.
 * - A parameter that may be left out (`?`, or a default for the whole parameter): nothing required.
 *
 * `known` is every property of the type.
 *
 * @internal
 * @example
 * stepInputs(parse('function f({ a, b = 1 }: { a: number; b: number; c?: string }) {}'));
 * // { required: ['a'], known: ['a', 'b', 'c'] }
 */
export const stepInputs = (fn: TS.SignatureDeclaration): StepInputs | undefined => {
  const ts = typescript();
  const parameters = fn.parameters.filter((p) => !isTypeOnly(p));
  const first = parameters[0];
  if (first === undefined) return Object.freeze({ required: Object.freeze([]), known: Object.freeze([]) });
  // Plain JavaScript says the type in JSDoc: `@param {{ values: number[], factor: number }} input`.
  const type = first.type ?? ts.getJSDocType(first);
  if (first.dotDotDotToken !== undefined || type === undefined) return undefined;
  const members = membersOf(type, 0, new Set());
  if (members === undefined) return undefined;
  const mayBeLeftOut = first.questionToken !== undefined || first.initializer !== undefined;
  const isRequired = (name: string): boolean => members.get(name)?.optional === false;
  const name = first.name;
  if (ts.isIdentifier(name)) return inputsOf(mayBeLeftOut ? [] : [...members.keys()].filter(isRequired), members);
  if (!ts.isObjectBindingPattern(name)) return undefined;
  const required: string[] = [];
  const bound = new Set<string>();
  let rest = false;
  for (const element of name.elements) {
    if (element.dotDotDotToken !== undefined) {
      rest = true;
      continue;
    }
    const key = element.propertyName === undefined ? (ts.isIdentifier(element.name) ? element.name.text : undefined) : literalName(element.propertyName);
    // A computed key, or a key the type does not declare: the type is not what the code reads.
    if (key === undefined || !members.has(key)) return undefined;
    bound.add(key);
    if (element.initializer === undefined && isRequired(key)) required.push(key);
  }
  if (rest) for (const key of members.keys()) if (!bound.has(key) && isRequired(key)) required.push(key);
  return inputsOf(mayBeLeftOut ? [] : required, members);
};
