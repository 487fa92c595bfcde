// The layering rule of ../shared/DESIGN.md ("## Layers"), checked on every `npm test`
// (`npm run lint:layers`). Imports run one way, top to bottom; a module may import its own
// layer or any lower one, never a higher one — type-only imports included, since they
// couple the lower layer to the higher one's shapes just the same. bench/ and test/ are
// outside the rule: they may import anything.

/** Top to bottom. Each entry is one layer: the directories (or files) under src/ in it. */
const LAYERS = [
  ['index.ts'], // the public face: imports anything, imported by nothing in src/
  ['cli/'],
  ['daemon.ts'],
  ['http/', 'worker/', 'seed/', 'stats/', 'dlq/', 'metrics/', 'lanes/', 'migrate/'],
  ['publish/'],
  ['amqp/'],
  ['topology/'],
  ['message/', 'delay/', 'logging/'],
  ['naming/'],
  ['config/'],
  ['errors.ts', 'lifecycle.ts'],
];

const escape = (text) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
// A directory matches everything under it; a file matches only itself.
const pattern = (entries) =>
  `^src/(${entries.map((entry) => (entry.endsWith('/') ? escape(entry) : `${escape(entry)}$`)).join('|')})`;

const upwardRules = LAYERS.slice(1).map((layer, below) => ({
  name: `no-upward-from-${layer.join('+').replace(/[/.]/g, '')}`,
  severity: 'error',
  comment: `${layer.join(', ')} may not import a higher layer: ${LAYERS.slice(0, below + 1)
    .map((higher) => higher.join(', '))
    .join(' / ')}`,
  from: { path: pattern(layer) },
  to: { path: pattern(LAYERS.slice(0, below + 1).flat()) },
}));

const everyLayer = pattern(LAYERS.flat());

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    ...upwardRules,
    {
      // A new top-level directory must be given a place in LAYERS before it can take part.
      name: 'src-module-without-layer',
      severity: 'error',
      comment: 'every module under src/ belongs to a layer in LAYERS (.dependency-cruiser.cjs)',
      from: { path: '^src/' },
      to: { path: '^src/', pathNot: everyLayer },
    },
    {
      name: 'src-module-without-layer-imports',
      severity: 'error',
      comment: 'every module under src/ belongs to a layer in LAYERS (.dependency-cruiser.cjs)',
      from: { path: '^src/', pathNot: everyLayer },
      to: {},
    },
    {
      // An unlayered module that imports nothing and is imported by nothing.
      name: 'src-orphan-without-layer',
      severity: 'error',
      comment: 'every module under src/ belongs to a layer in LAYERS (.dependency-cruiser.cjs)',
      from: { orphan: true, path: '^src/', pathNot: everyLayer },
      to: {},
    },
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'a cycle makes two modules one layer in all but name',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      // amqp/ connects and opens channels; the layers above work on the channels and
      // messages it hands them, so they may name the libraries' types but not call in.
      name: 'amqp-libraries-only-in-amqp',
      severity: 'error',
      comment: 'outside src/amqp/, amqplib and amqp-connection-manager are imported for their types only (import type)',
      from: { path: '^src/', pathNot: '^src/amqp/' },
      to: { path: 'node_modules/(amqplib|amqp-connection-manager)/', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'src-imports-no-tests',
      severity: 'error',
      comment: 'src/ ships; test/ and bench/ do not',
      from: { path: '^src/' },
      to: { path: '^(test|bench)/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // Type-only imports count (see above); without this they would vanish with compilation.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js', '.json'] },
  },
};
