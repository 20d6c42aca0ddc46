/**
 * Syntax: a canonical text of a syntax tree that leaves out what does not run, and a scope
 * analysis that finds the names a piece of code uses from outside itself.
 *
 * @packageDocumentation
 * @internal
 */
import type * as TS from 'typescript';

// the compiler

let compiler: typeof TS | undefined;

/**
 * The TypeScript compiler API, loaded on first use: loading it takes a few hundred
 * milliseconds, which a program that never fingerprints should not pay.
 *
 * @internal
 * @example
 * const ts = typescript();
 * ts.createSourceFile('a.ts', 'const a = 1;', ts.ScriptTarget.Latest, true);
 */
export const typescript = (): typeof TS => (compiler ??= require('typescript') as typeof TS);

// canonical text

let kindNames: string[] | undefined;

/** A kind's name (stable across compiler versions, unlike its number). */
const kindName = (kind: TS.SyntaxKind): string => {
  if (kindNames === undefined) {
    const names: string[] = [];
    for (const [name, value] of Object.entries(typescript().SyntaxKind)) {
      if (typeof value === 'number' && !/^(First|Last)/.test(name) && names[value] === undefined) names[value] = name;
    }
    kindNames = names;
  }
  return kindNames[kind] ?? String(kind);
};

const hasModifier = (node: TS.Node, kind: TS.SyntaxKind): boolean => {
  const ts = typescript();
  return ts.canHaveModifiers(node) && (ts.getModifiers(node) ?? []).some((m) => m.kind === kind);
};

/**
 * Declarations and statements that emit no JavaScript: interfaces, type aliases, `declare`d
 * things, overload signatures, `import type`, `implements` clauses, `this` parameters.
 *
 * @internal
 * @example
 * isTypeOnly(interfaceDeclaration); // true
 */
export const isTypeOnly = (node: TS.Node): boolean => {
  const ts = typescript();
  const K = ts.SyntaxKind;
  switch (node.kind) {
    case K.InterfaceDeclaration:
    case K.TypeAliasDeclaration:
    case K.IndexSignature:
    case K.SemicolonClassElement:
      return true;
    case K.ImportDeclaration: {
      const clause = (node as TS.ImportDeclaration).importClause;
      return clause !== undefined && clause.phaseModifier === K.TypeKeyword;
    }
    case K.ImportEqualsDeclaration:
      return (node as TS.ImportEqualsDeclaration).isTypeOnly;
    case K.ExportDeclaration:
      return (node as TS.ExportDeclaration).isTypeOnly;
    case K.ImportSpecifier:
    case K.ExportSpecifier:
      return (node as TS.ImportSpecifier | TS.ExportSpecifier).isTypeOnly;
    case K.FunctionDeclaration:
    case K.MethodDeclaration:
    case K.Constructor:
    case K.GetAccessor:
    case K.SetAccessor:
      if ((node as TS.FunctionLikeDeclaration).body === undefined) return true;
      break;
    case K.PropertyDeclaration:
      if (hasModifier(node, K.AbstractKeyword)) return true;
      break;
    case K.Parameter: {
      const name = (node as TS.ParameterDeclaration).name;
      return ts.isIdentifier(name) && name.text === 'this';
    }
    case K.HeritageClause:
      return (node as TS.HeritageClause).token === K.ImplementsKeyword;
  }
  return hasModifier(node, K.DeclareKeyword);
};

/** Modifiers that only the type checker reads (on a constructor parameter they make a property, so they stay there). */
const isErasedModifier = (parent: TS.Node, kind: TS.SyntaxKind): boolean => {
  const K = typescript().SyntaxKind;
  switch (kind) {
    case K.PublicKeyword:
    case K.PrivateKeyword:
    case K.ProtectedKeyword:
    case K.ReadonlyKeyword:
    case K.OverrideKeyword:
      return parent.kind !== K.Parameter;
    case K.ExportKeyword:
    case K.DefaultKeyword:
    case K.AbstractKeyword:
    case K.InKeyword:
    case K.OutKeyword:
      return true;
    default:
      return false;
  }
};

/**
 * Whether `child` of `parent` is erased when types are stripped: type annotations, `?` and `!`
 * on declarations, type-only modifiers and type-only declarations.
 *
 * @internal
 * @example
 * skipsChild(parameter, parameter.type!); // true
 */
export const skipsChild = (parent: TS.Node, child: TS.Node): boolean => {
  const ts = typescript();
  const p = parent as { readonly type?: unknown; readonly questionToken?: unknown; readonly exclamationToken?: unknown };
  if (child === p.type || child === p.exclamationToken) return true;
  if (child === p.questionToken && parent.kind !== ts.SyntaxKind.ConditionalExpression) return true;
  if (ts.isModifier(child)) return isErasedModifier(parent, child.kind);
  if (child.kind === ts.SyntaxKind.EmptyStatement && isStatementList(parent)) return true;
  if (ts.isJsxText(child) && child.containsOnlyTriviaWhiteSpaces) return true;
  return isTypeOnly(child);
};

/**
 * Whether the array of `parent` holds only type syntax (type parameters, type arguments).
 *
 * @internal
 * @example
 * skipsArray(call, call.typeArguments!); // true for `f<number>(x)`
 */
export const skipsArray = (parent: TS.Node, array: TS.NodeArray<TS.Node>): boolean => {
  const p = parent as { readonly typeParameters?: unknown; readonly typeArguments?: unknown };
  return array === p.typeParameters || array === p.typeArguments;
};

const isStatementList = (node: TS.Node): boolean => {
  const K = typescript().SyntaxKind;
  return node.kind === K.Block || node.kind === K.SourceFile || node.kind === K.ModuleBlock || node.kind === K.CaseClause || node.kind === K.DefaultClause;
};

/**
 * Visits the children of `node` that run: type syntax is left out.
 *
 * @internal
 * @example
 * forEachRunningChild(fn, (child) => console.log(child.kind));
 */
export const forEachRunningChild = (node: TS.Node, visit: (child: TS.Node) => void): void => {
  typescript().forEachChild(
    node,
    (child) => {
      if (!skipsChild(node, child)) visit(child);
    },
    (children) => {
      if (skipsArray(node, children)) return;
      for (const child of children) if (!skipsChild(node, child)) visit(child);
    },
  );
};

/** Expressions that are only their operand once types and redundant parentheses are gone. */
const transparentOperand = (node: TS.Node): TS.Node | undefined => {
  const K = typescript().SyntaxKind;
  switch (node.kind) {
    case K.ParenthesizedExpression:
    case K.AsExpression:
    case K.SatisfiesExpression:
    case K.TypeAssertionExpression:
    case K.NonNullExpression:
    case K.ExpressionWithTypeArguments:
    case K.PartiallyEmittedExpression:
      return (node as TS.Node & { readonly expression: TS.Node }).expression;
    default:
      return undefined;
  }
};

/**
 * Unwraps parentheses, `as`, `satisfies`, `<T>x` and `x!`.
 *
 * @internal
 * @example
 * unwrap(parse('(f as Fn)')); // the identifier f
 */
export const unwrap = (node: TS.Node): TS.Node => {
  let current = node;
  for (let inner = transparentOperand(current); inner !== undefined; inner = transparentOperand(current)) current = inner;
  return current;
};

/** The parts of a node the tree shape does not tell: names, literal values, operators, `let`/`const`. */
const leafText = (node: TS.Node): string | undefined => {
  const ts = typescript();
  const K = ts.SyntaxKind;
  switch (node.kind) {
    case K.Identifier:
    case K.PrivateIdentifier:
    case K.StringLiteral:
    case K.NumericLiteral:
    case K.BigIntLiteral:
    case K.RegularExpressionLiteral:
    case K.JsxText:
      return (node as TS.LiteralLikeNode).text;
    case K.NoSubstitutionTemplateLiteral:
    case K.TemplateHead:
    case K.TemplateMiddle:
    case K.TemplateTail: {
      const t = node as TS.TemplateLiteralLikeNode;
      return t.rawText ?? t.text;
    }
    case K.PrefixUnaryExpression:
    case K.PostfixUnaryExpression:
      return kindName((node as TS.PrefixUnaryExpression | TS.PostfixUnaryExpression).operator);
    case K.MetaProperty:
      return kindName((node as TS.MetaProperty).keywordToken);
    case K.HeritageClause:
      return kindName((node as TS.HeritageClause).token);
    case K.VariableDeclarationList:
      return declarationKeyword(node.flags);
    default:
      return undefined;
  }
};

/**
 * `var`, `let`, `const`, `using` or `await using`, from a declaration list's flags.
 *
 * @internal
 * @example
 * declarationKeyword(statement.declarationList.flags); // 'const'
 */
export const declarationKeyword = (flags: TS.NodeFlags): string => {
  const F = typescript().NodeFlags;
  switch (flags & F.BlockScoped) {
    case F.Let:
      return 'let';
    case F.Const:
      return 'const';
    case F.Using:
      return 'using';
    case F.AwaitUsing:
      return 'await using';
    default:
      return 'var';
  }
};

/**
 * Writes the canonical text of `node` to `out`: the syntax tree with its kinds, names and
 * literal values, without whitespace, comments, semicolons, trailing commas, quote style,
 * redundant parentheses and type syntax. Two texts are equal when the code runs the same way
 * (up to those differences), and differ when anything that runs differs.
 *
 * @internal
 * @example
 * const out: string[] = [];
 * canonicalText(node, out);
 * out.join(' ');
 */
export const canonicalText = (node: TS.Node, out: string[]): void => {
  const OptionalChain = typescript().NodeFlags.OptionalChain;
  const write = (n: TS.Node): void => {
    const operand = transparentOperand(n);
    if (operand !== undefined) return write(operand);
    out.push('(', kindName(n.kind));
    if ((n.flags & OptionalChain) !== 0) out.push('?.');
    const text = leafText(n);
    if (text !== undefined) out.push(JSON.stringify(text));
    typescript().forEachChild(
      n,
      (child) => {
        if (!skipsChild(n, child)) write(child);
      },
      (children) => {
        if (skipsArray(n, children)) return;
        out.push('[');
        for (const child of children) if (!skipsChild(n, child)) write(child);
        out.push(']');
      },
    );
    out.push(')');
  };
  write(node);
};

// scopes

/**
 * The names a binding (an identifier or a destructuring pattern) declares.
 *
 * @internal
 * @example
 * bindingNames(parse('{ a, b: [c] }')); // ['a', 'c']
 */
export const bindingNames = (name: TS.BindingName, out: string[] = []): string[] => {
  const ts = typescript();
  if (ts.isIdentifier(name)) out.push(name.text);
  else for (const element of name.elements) if (!ts.isOmittedExpression(element)) bindingNames(element.name, out);
  return out;
};

/**
 * Whether the node is a function with a body of its own (its parameters and `var`s live in its scope).
 *
 * @internal
 * @example
 * isFunctionWithBody(arrowFunction); // true
 */
export const isFunctionWithBody = (node: TS.Node): node is TS.FunctionLikeDeclaration => {
  const K = typescript().SyntaxKind;
  switch (node.kind) {
    case K.FunctionDeclaration:
    case K.FunctionExpression:
    case K.ArrowFunction:
    case K.MethodDeclaration:
    case K.Constructor:
    case K.GetAccessor:
    case K.SetAccessor:
      return (node as TS.FunctionLikeDeclaration).body !== undefined;
    default:
      return false;
  }
};

const isBlockScoped = (list: TS.VariableDeclarationList): boolean => (list.flags & typescript().NodeFlags.BlockScoped) !== 0;

/**
 * The `var` names declared in `node` outside nested functions and classes (they belong to the
 * enclosing function, or to the module at top level).
 *
 * @internal
 * @example
 * hoistedVarNames(ifStatement); // ['x'] for `if (a) { var x = 1; }`
 */
export const hoistedVarNames = (node: TS.Node, out: string[] = []): string[] => {
  const ts = typescript();
  const visit = (n: TS.Node): void => {
    if (isFunctionWithBody(n) || ts.isClassLike(n)) return;
    if (ts.isVariableDeclarationList(n) && !isBlockScoped(n)) for (const d of n.declarations) bindingNames(d.name, out);
    ts.forEachChild(n, visit);
  };
  visit(node);
  return out;
};

/** The block-scoped names declared directly in a list of statements. */
const lexicalNames = (statements: readonly TS.Statement[], out: string[]): void => {
  const ts = typescript();
  for (const s of statements) {
    if (isTypeOnly(s)) continue;
    if (ts.isVariableStatement(s)) {
      if (isBlockScoped(s.declarationList)) for (const d of s.declarationList.declarations) bindingNames(d.name, out);
    } else if ((ts.isFunctionDeclaration(s) || ts.isClassDeclaration(s) || ts.isEnumDeclaration(s)) && s.name !== undefined) {
      out.push(s.name.text);
    } else if (ts.isModuleDeclaration(s) && ts.isIdentifier(s.name)) {
      out.push(s.name.text);
    } else if (ts.isImportEqualsDeclaration(s)) {
      out.push(s.name.text);
    }
  }
};

const scopeCache = new WeakMap<TS.Node, ReadonlySet<string> | null>();

/**
 * The names a scope-making node declares for the code inside it, or `undefined` when the node
 * makes no scope. Functions: parameters, `var`s and a function expression's own name. Blocks:
 * `let`, `const`, `class` and `function` declarations. Loops: their `let`/`const`. `catch`: its
 * variable. A named class expression: its name. (The module's own scope is indexed separately.)
 *
 * @internal
 * @example
 * scopeDeclarations(arrowFunction); // Set { 'x', 'y' } for `(x, { y }) => x + y`
 */
export const scopeDeclarations = (node: TS.Node): ReadonlySet<string> | undefined => {
  const cached = scopeCache.get(node);
  if (cached !== undefined) return cached ?? undefined;
  const ts = typescript();
  let names: string[] | undefined;
  if (isFunctionWithBody(node)) {
    names = [];
    for (const p of node.parameters) if (!isTypeOnly(p)) bindingNames(p.name, names);
    if (ts.isFunctionExpression(node) && node.name !== undefined) names.push(node.name.text);
    if (node.body !== undefined && ts.isBlock(node.body)) hoistedVarNames(node.body, names);
  } else if (ts.isBlock(node) || ts.isModuleBlock(node)) {
    names = [];
    lexicalNames(node.statements, names);
  } else if (ts.isCaseBlock(node)) {
    names = [];
    for (const clause of node.clauses) lexicalNames(clause.statements, names);
  } else if (ts.isForStatement(node) || ts.isForInStatement(node) || ts.isForOfStatement(node)) {
    names = [];
    const init = node.initializer;
    if (init !== undefined && ts.isVariableDeclarationList(init) && isBlockScoped(init)) for (const d of init.declarations) bindingNames(d.name, names);
  } else if (ts.isCatchClause(node)) {
    names = node.variableDeclaration === undefined ? [] : bindingNames(node.variableDeclaration.name);
  } else if (ts.isClassExpression(node) && node.name !== undefined) {
    names = [node.name.text];
  }
  const result = names === undefined ? undefined : new Set(names);
  scopeCache.set(node, result ?? null);
  return result;
};

/**
 * Whether an identifier is a reference to a binding (and not a property name, a declared name,
 * a label or an intrinsic JSX tag).
 *
 * @internal
 * @example
 * isReference(id, parent); // false for `b` in `a.b`, true for `a`
 */
export const isReference = (id: TS.Identifier, parent: TS.Node): boolean => {
  const ts = typescript();
  const K = ts.SyntaxKind;
  switch (parent.kind) {
    case K.PropertyAccessExpression:
      return (parent as TS.PropertyAccessExpression).expression === id;
    case K.PropertyAssignment:
      return (parent as TS.PropertyAssignment).initializer === id;
    case K.BindingElement:
      return (parent as TS.BindingElement).initializer === id;
    case K.QualifiedName:
    case K.LabeledStatement:
    case K.BreakStatement:
    case K.ContinueStatement:
    case K.MetaProperty:
    case K.JsxAttribute:
    case K.JsxNamespacedName:
    case K.ImportClause:
    case K.ImportSpecifier:
    case K.NamespaceImport:
    case K.ImportEqualsDeclaration:
    case K.ExportSpecifier:
    case K.NamespaceExport:
      return false;
    case K.JsxOpeningElement:
    case K.JsxSelfClosingElement:
    case K.JsxClosingElement:
      return !/^[a-z]/.test(id.text);
    case K.MethodDeclaration:
    case K.PropertyDeclaration:
    case K.GetAccessor:
    case K.SetAccessor:
    case K.EnumMember:
    case K.FunctionDeclaration:
    case K.FunctionExpression:
    case K.ClassDeclaration:
    case K.ClassExpression:
    case K.EnumDeclaration:
    case K.ModuleDeclaration:
    case K.VariableDeclaration:
    case K.Parameter:
      return (parent as TS.NamedDeclaration).name !== id;
    default:
      return true;
  }
};

/**
 * How code uses a name from outside itself: `null` when it uses the value as a whole, or the
 * property names it reads (`h.a`, `h['b']`), which lets a namespace import contribute only the
 * exports the code reads.
 *
 * @internal
 * @example
 * const uses: NameUse = new Set(['normalize']);
 */
export type NameUse = Set<string> | null;

/**
 * A module a function loads at run time with `require(…)` or `import(…)`: with a literal
 * specifier (and the export it reads, `require('./a').b`, if one), or computed at run time, with
 * the expression's text and, for a template literal, its literal pieces in order
 * (`` `./models/${kind}.mts` `` has `['./models/', '.mts']`).
 *
 * @internal
 * @example
 * const load: DynamicLoad = { _tag: 'Literal', specifier: './helpers', member: 'normalize' };
 * const computed: DynamicLoad = { _tag: 'Computed', text: '`./models/${kind}.mts`', literals: ['./models/', '.mts'] };
 */
export type DynamicLoad =
  | { readonly _tag: 'Literal'; readonly specifier: string; readonly member: string | undefined }
  | { readonly _tag: 'Computed'; readonly text: string; readonly literals: readonly string[] | undefined };

/**
 * The names code uses from outside itself (free names), and the modules it loads at run time.
 *
 * @internal
 * @example
 * const free = freeNames(fnNode);
 * [...free.names.keys()]; // ['normalize', 'SCALE', 'Math']
 */
export interface FreeNames {
  readonly names: ReadonlyMap<string, NameUse>;
  readonly loads: readonly DynamicLoad[];
}

/** The property an expression reads from `node`, when `node` is the object of a property access with a literal name. */
const memberRead = (node: TS.Node): string | undefined => {
  const ts = typescript();
  const parent = node.parent;
  if (ts.isPropertyAccessExpression(parent) && parent.expression === node && ts.isIdentifier(parent.name)) return parent.name.text;
  if (ts.isElementAccessExpression(parent) && parent.expression === node && ts.isStringLiteralLike(parent.argumentExpression)) return parent.argumentExpression.text;
  return undefined;
};

const freeCache = new WeakMap<TS.Node, FreeNames>();

/**
 * The free names of `root` (names it uses that it does not declare itself), with how each is used,
 * and the modules it loads with a literal `require`/`import()`. Scopes are resolved syntactically:
 * a parameter or local named like a module-level function shadows it. Type syntax is ignored.
 *
 * @internal
 * @example
 * freeNames(parse('(x) => helper(x) + SCALE')).names; // Map { 'helper' => null, 'SCALE' => null }
 */
export const freeNames = (root: TS.Node): FreeNames => {
  const cached = freeCache.get(root);
  if (cached !== undefined) return cached;
  const ts = typescript();
  const names = new Map<string, NameUse>();
  const loads: DynamicLoad[] = [];
  const scopes: ReadonlySet<string>[] = [];
  const bound = (name: string): boolean => scopes.some((s) => s.has(name));
  const use = (name: string, member: string | undefined): void => {
    const previous = names.get(name);
    if (previous === null) return;
    if (member === undefined) names.set(name, null);
    else names.set(name, (previous ?? new Set<string>()).add(member));
  };
  const visit = (node: TS.Node): void => {
    if (ts.isIdentifier(node)) {
      if (isReference(node, node.parent) && !bound(node.text)) use(node.text, memberRead(node));
      return;
    }
    if (ts.isCallExpression(node) && node.arguments.length >= 1) {
      const [first] = node.arguments;
      const callee = node.expression;
      const isLoader = (ts.isIdentifier(callee) && callee.text === 'require' && !bound('require')) || callee.kind === ts.SyntaxKind.ImportKeyword;
      if (isLoader && first !== undefined && ts.isStringLiteralLike(first)) {
        loads.push({ _tag: 'Literal', specifier: first.text, member: callee.kind === ts.SyntaxKind.ImportKeyword ? undefined : memberRead(node) });
      } else if (isLoader && first !== undefined) {
        const arg = unwrap(first);
        const literals = ts.isTemplateExpression(arg) ? [arg.head.text, ...arg.templateSpans.map((span) => span.literal.text)] : undefined;
        loads.push({ _tag: 'Computed', text: first.getText(), literals });
      }
    }
    const scope = scopeDeclarations(node);
    if (scope !== undefined) scopes.push(scope);
    forEachRunningChild(node, visit);
    if (scope !== undefined) scopes.pop();
  };
  visit(root);
  const result: FreeNames = { names, loads };
  freeCache.set(root, result);
  return result;
};

/**
 * The declaration of `name` in the scope `scope` when it is code that can be fingerprinted:
 * a function or class declaration, or a `const` initialised with a function or class expression.
 *
 * @internal
 * @example
 * codeDeclarationIn(block, 'local'); // the `const local = (x) => x + 1` declaration
 */
export const codeDeclarationIn = (scope: TS.Node, name: string): TS.FunctionDeclaration | TS.ClassDeclaration | TS.VariableDeclaration | undefined => {
  const ts = typescript();
  const statements = ts.isBlock(scope) || ts.isModuleBlock(scope) ? scope.statements : ts.isCaseBlock(scope) ? scope.clauses.flatMap((c) => [...c.statements]) : [];
  let found: TS.FunctionDeclaration | TS.ClassDeclaration | TS.VariableDeclaration | undefined;
  for (const s of statements) {
    if ((ts.isFunctionDeclaration(s) && s.body !== undefined) || ts.isClassDeclaration(s)) {
      if (s.name?.text === name) found = s;
    } else if (ts.isVariableStatement(s) && (s.declarationList.flags & ts.NodeFlags.Const) !== 0) {
      for (const d of s.declarationList.declarations) {
        if (ts.isIdentifier(d.name) && d.name.text === name && d.initializer !== undefined && isCodeExpression(d.initializer)) found = d;
      }
    }
  }
  return found;
};

/**
 * Whether an expression is a function or class written in place.
 *
 * @internal
 * @example
 * isCodeExpression(parse('() => 1')); // true
 */
export const isCodeExpression = (node: TS.Node): boolean => {
  const ts = typescript();
  const inner = unwrap(node);
  return ts.isArrowFunction(inner) || ts.isFunctionExpression(inner) || ts.isClassExpression(inner);
};

const NATIVE = /\{\s*\[native code\]\s*\}\s*$/;

/**
 * Whether a function's text is `[native code]`: a bound function, a built-in, a host function.
 *
 * @internal
 * @example
 * isNativeCode(Function.prototype.toString.call(f.bind(null, 3))); // true
 */
export const isNativeCode = (text: string): boolean => NATIVE.test(text);
