/**
 * The code a step reaches through its values: a step that calls `model.predict()` on an input
 * runs the code of `predict`, which its own source does not name. The parameters' types say where
 * that code is, as written in the source (no type checker): a type naming a class declared in
 * the project (directly, in a type literal, an interface or type alias, an array, a generic's
 * arguments, or a class's own fields) brings that class's members into the fingerprint.
 *
 * Where the types cannot say (`any`, `unknown`, `object`, a function type, an interface or object
 * type with methods and no class behind it), the place is a *shallow spot*: named, so that a user
 * reading `runner.explain(...)` knows which edits the key does not see.
 *
 * @packageDocumentation
 * @internal
 */
import type * as TS from 'typescript';
import { findType, type TypeDeclaration } from './inputs';
import { importedDeclaration, type Declaration, type ModuleIndex } from './modules';
import { isTypeOnly, typescript } from './syntax';

// model

/**
 * A module-level class whose instances reach the step.
 *
 * @example
 * const c: ReachedClass = { module: index, declaration, node: classNode, name: 'Model' };
 */
export interface ReachedClass {
  readonly module: ModuleIndex;
  readonly declaration: Declaration;
  /** The class node itself. */
  readonly node: TS.ClassLikeDeclaration;
  readonly name: string;
}

/**
 * What a step's parameter types say about the code its values carry.
 *
 * @example
 * const v: ValueCode = { classes: [model], shallowSpots: ['scorer: any says nothing of the methods its value carries, …'] };
 */
export interface ValueCode {
  readonly classes: readonly ReachedClass[];
  /** Places where the code values carry cannot be found, in words, sorted. */
  readonly shallowSpots: readonly string[];
}

// utils

/** How deep type references are followed. */
const MAX_DEPTH = 16;

const memberName = (name: TS.PropertyName | undefined): string | undefined => {
  const ts = typescript();
  if (name === undefined) return undefined;
  if (ts.isIdentifier(name) || ts.isStringLiteralLike(name) || ts.isNumericLiteral(name) || ts.isPrivateIdentifier(name)) return name.text;
  return undefined;
};

const joinLabel = (label: string, member: string): string => (label === '' ? member : `${label}.${member}`);

/** The class node a class declaration stands for (`class X {}` or `const X = class {}`). */
const classNodeOf = (d: Declaration): TS.ClassLikeDeclaration | undefined => {
  const ts = typescript();
  for (const node of d.nodes) {
    if (ts.isClassDeclaration(node)) return node;
    if (ts.isVariableStatement(node)) {
      for (const v of node.declarationList.declarations) if (v.initializer !== undefined && ts.isClassExpression(v.initializer)) return v.initializer;
    }
    if (ts.isVariableDeclaration(node) && node.initializer !== undefined && ts.isClassExpression(node.initializer)) return node.initializer;
  }
  return undefined;
};

/** Whether `name` is a type parameter of a scope around `at`. */
const isTypeParameter = (at: TS.Node, name: string): boolean => {
  for (let scope: TS.Node | undefined = at.parent; scope !== undefined; scope = scope.parent) {
    const typeParameters = (scope as { readonly typeParameters?: TS.NodeArray<TS.TypeParameterDeclaration> }).typeParameters;
    if (typeParameters?.some((p) => p.name.text === name) === true) return true;
  }
  return false;
};

/** The module-level class a type name refers to in `index`: declared there, or imported (also `import type`). */
const classNamed = (index: ModuleIndex, name: string): { readonly module: ModuleIndex; readonly declaration: Declaration } | undefined => {
  const ts = typescript();
  const b = index.bindings.get(name);
  const found =
    b?._tag === 'Local'
      ? { module: index, declaration: b.declaration }
      : b?._tag === 'Import'
        ? importedDeclaration(index, b.specifier, b.imported)
        : typeOnlyImport(index, name, ts);
  return found?.declaration.kind === 'class' ? found : undefined;
};

/** A class imported with `import type { X }` or `import { type X }` (not a binding at run time). */
const typeOnlyImport = (index: ModuleIndex, name: string, ts: typeof TS): { readonly module: ModuleIndex; readonly declaration: Declaration } | undefined => {
  for (const s of index.sourceFile.statements) {
    if (!ts.isImportDeclaration(s) || !ts.isStringLiteralLike(s.moduleSpecifier)) continue;
    const named = s.importClause?.namedBindings;
    if (named === undefined || !ts.isNamedImports(named)) continue;
    const element = named.elements.find((e) => e.name.text === name);
    if (element === undefined) continue;
    return importedDeclaration(index, s.moduleSpecifier.text, (element.propertyName ?? element.name).text);
  }
  return undefined;
};

/** The module a type declaration was found in (`findType` follows relative imports). */
const moduleOf = (index: ModuleIndex, node: TS.Node): ModuleIndex | undefined => {
  const file = node.getSourceFile().fileName;
  return file === index.sourceFile.fileName ? index : undefined;
};

// the walk

/**
 * A type whose values reach the code, with the name shallow spots give it (`''` for a destructured parameter).
 *
 * @example
 * const t: ValueType = { type: parameter.type, label: 'input' };
 */
export interface ValueType {
  readonly type: TS.TypeNode;
  readonly label: string;
}

/**
 * The types of the values that reach a fingerprinted node: a function's parameters; for a value
 * (an io-ts codec: `const c: t.Type<Model, …> = …`, `new t.Type<Model, …>(…)`), the first type
 * argument of its annotation or of its `new` expression, the type it decodes to.
 *
 * @internal
 * @example
 * valueTypesOf(fn); // [{ type: { model: Model; data: number[] }, label: '' }]
 */
export const valueTypesOf = (node: TS.Node): ValueType[] => {
  const ts = typescript();
  if (ts.isFunctionLike(node)) {
    return node.parameters.flatMap((p) => (isTypeOnly(p) || p.type === undefined ? [] : [{ type: p.type, label: ts.isIdentifier(p.name) ? p.name.text : '' }]));
  }
  const decoded = (n: TS.Node | undefined): TS.TypeNode | undefined => {
    if (n === undefined) return undefined;
    if (ts.isTypeReferenceNode(n) || ts.isNewExpression(n)) return n.typeArguments?.[0];
    return undefined;
  };
  const variable = ts.isVariableStatement(node) ? node.declarationList.declarations[0] : ts.isVariableDeclaration(node) ? node : undefined;
  const type = variable === undefined ? decoded(node) : (decoded(variable.type) ?? decoded(variable.initializer));
  return type === undefined ? [] : [{ type, label: '(the decoded value)' }];
};

/**
 * The classes whose instances reach code through the given types (see {@link valueTypesOf}), as
 * they are written, and the shallow spots where the types cannot say. Never throws on odd syntax:
 * what it does not understand is neither a class nor a shallow spot.
 *
 * @internal
 * @example
 * // function evaluate({ model, data }: { model: Model; data: number[] })
 * codeReachedThroughValues(index, valueTypesOf(fn), loadModule); // { classes: [Model], shallowSpots: [] }
 */
export const codeReachedThroughValues = (index: ModuleIndex, types: readonly ValueType[], load: (file: string) => ModuleIndex | undefined): ValueCode => {
  const ts = typescript();
  const K = ts.SyntaxKind;
  const classes: ReachedClass[] = [];
  const spots = new Set<string>();
  const seen = new Set<TS.Node>();

  const indexOf = (node: TS.Node, near: ModuleIndex): ModuleIndex | undefined => moduleOf(near, node) ?? load(node.getSourceFile().fileName);

  const addClass = (found: { readonly module: ModuleIndex; readonly declaration: Declaration }, depth: number): void => {
    const node = classNodeOf(found.declaration);
    if (node === undefined || seen.has(node)) return;
    seen.add(node);
    const name = node.name?.text ?? found.declaration.names.join(', ');
    classes.push({ module: found.module, declaration: found.declaration, node, name });
    // What the class's fields hold reaches the step too.
    for (const member of node.members) {
      if (ts.isPropertyDeclaration(member) && member.type !== undefined) walk(member.type, found.module, joinLabel(name, memberName(member.name) ?? '[computed]'), depth + 1);
      if (ts.isConstructorDeclaration(member)) {
        for (const p of member.parameters) {
          if (p.type !== undefined && ts.canHaveModifiers(p) && (ts.getModifiers(p)?.length ?? 0) > 0 && ts.isIdentifier(p.name)) walk(p.type, found.module, joinLabel(name, p.name.text), depth + 1);
        }
      }
    }
  };

  const walkTypes = (declarations: readonly TypeDeclaration[], near: ModuleIndex, label: string, typeName: string, depth: number): void => {
    const methods: string[] = [];
    for (const d of declarations) {
      if (seen.has(d)) continue;
      seen.add(d);
      const module = indexOf(d, near);
      if (module === undefined) continue;
      if (ts.isTypeAliasDeclaration(d)) {
        walk(d.type, module, label, depth + 1);
        continue;
      }
      for (const clause of d.heritageClauses ?? []) {
        for (const base of clause.types) {
          if (ts.isIdentifier(base.expression)) reference(base, base.expression.text, base.typeArguments, module, label, depth + 1);
        }
      }
      methods.push(...membersOf(d.members, module, label, depth));
    }
    if (methods.length > 0) spots.add(`${label || '(the parameter)'}: ${typeName} is an interface with methods (${[...new Set(methods)].join(', ')}), not a class of the project, so the code behind them is not fingerprinted (type it with the class, or list that code in dependsOn)`);
  };

  /** Walks the members of a type literal or interface; returns the names of its methods. */
  const membersOf = (members: readonly TS.TypeElement[], module: ModuleIndex, label: string, depth: number): string[] => {
    const methods: string[] = [];
    for (const m of members) {
      const name = memberName(m.name) ?? '[computed]';
      if (ts.isMethodSignature(m) || ts.isCallSignatureDeclaration(m) || ts.isConstructSignatureDeclaration(m)) methods.push(ts.isMethodSignature(m) ? name : '()');
      else if (ts.isPropertySignature(m) && m.type !== undefined) walk(m.type, module, joinLabel(label, name), depth + 1);
    }
    return methods;
  };

  const reference = (at: TS.Node, name: string, args: TS.NodeArray<TS.TypeNode> | undefined, module: ModuleIndex, label: string, depth: number): void => {
    for (const arg of args ?? []) walk(arg, module, label, depth + 1);
    if (isTypeParameter(at, name)) return;
    const cls = classNamed(module, name);
    if (cls !== undefined) return addClass(cls, depth);
    const declarations = findType(at, name, depth);
    if (declarations !== undefined) walkTypes(declarations, module, label, name, depth);
  };

  const walk = (type: TS.TypeNode, module: ModuleIndex, label: string, depth: number): void => {
    if (depth > MAX_DEPTH) return;
    const where = label || '(the parameter)';
    switch (type.kind) {
      case K.AnyKeyword:
      case K.UnknownKeyword:
      case K.ObjectKeyword:
        spots.add(`${where}: ${type.kind === K.AnyKeyword ? 'any' : type.kind === K.UnknownKeyword ? 'unknown' : 'object'} says nothing of the methods its value carries, so their code is not fingerprinted (type it with a class of the project)`);
        return;
      case K.FunctionType:
      case K.ConstructorType:
        spots.add(`${where}: a function value, whose code is not fingerprinted (list it in dependsOn)`);
        return;
      case K.TypeLiteral: {
        const methods = membersOf((type as TS.TypeLiteralNode).members, module, label, depth);
        if (methods.length > 0) spots.add(`${where}: an object type with methods (${[...new Set(methods)].join(', ')}), not a class of the project, so the code behind them is not fingerprinted (type it with the class, or list that code in dependsOn)`);
        return;
      }
      case K.TypeReference: {
        const ref = type as TS.TypeReferenceNode;
        if (ts.isIdentifier(ref.typeName)) reference(ref, ref.typeName.text, ref.typeArguments, module, label, depth);
        else for (const arg of ref.typeArguments ?? []) walk(arg, module, label, depth + 1);
        return;
      }
      default:
        // Arrays, tuples, unions, intersections, `readonly`, parentheses: what they contain.
        ts.forEachChild(type, (child) => {
          if (ts.isTypeNode(child)) walk(child, module, label, depth + 1);
          else if (ts.isNamedTupleMember(child)) walk(child.type, module, label, depth + 1);
        });
    }
  };

  for (const { type, label } of types) walk(type, index, label, 0);
  return { classes, shallowSpots: [...spots].sort() };
};
