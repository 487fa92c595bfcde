/** The console's stylesheet, served as /ui/app.css. */
export const STYLES = `
:root { --fg: #1d232a; --muted: #65707c; --line: #d9dee3; --accent: #2458b3; --bad: #b3261e; --bg: #f6f7f9; font-family: system-ui, sans-serif; font-size: 14px; color: var(--fg); }
body { margin: 0; background: var(--bg); }
header { display: flex; gap: 1rem; align-items: center; padding: .6rem 1.2rem; background: #1d232a; color: #fff; }
header .ns { color: #9fb3c8; font-family: ui-monospace, monospace; }
header nav { display: flex; gap: .2rem; }
header nav a { color: #cfd8e3; text-decoration: none; padding: .3rem .7rem; border-radius: 4px; }
header nav a[aria-current=page] { background: #3a4654; color: #fff; }
.badge { margin-left: auto; background: #6b4e00; color: #ffe9a8; padding: .15rem .5rem; border-radius: 3px; font-size: 12px; }
main { padding: 1rem 1.2rem; }
h2 { font-size: 1.1rem; margin: 1.2rem 0 .5rem; }
table { border-collapse: collapse; background: #fff; min-width: 40rem; }
th, td { text-align: left; padding: .35rem .7rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-weight: 600; background: #eef1f4; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.cards { display: flex; gap: 1rem; flex-wrap: wrap; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: .7rem 1rem; min-width: 9rem; }
.card .value { font-size: 1.6rem; font-weight: 600; }
.card.bad .value { color: var(--bad); }
.muted { color: var(--muted); }
.error { color: var(--bad); }
pre { background: #fff; border: 1px solid var(--line); padding: .7rem; overflow: auto; max-height: 28rem; }
button { font: inherit; padding: .3rem .8rem; border: 1px solid var(--accent); background: var(--accent); color: #fff; border-radius: 4px; cursor: pointer; }
button.secondary { background: #fff; color: var(--accent); }
button.danger { background: var(--bad); border-color: var(--bad); }
button:disabled { opacity: .5; cursor: default; }
.toolbar { display: flex; gap: .5rem; align-items: center; flex-wrap: wrap; margin: .5rem 0; }
input, select { font: inherit; padding: .25rem .4rem; }
.tabs a { padding: .3rem .8rem; border: 1px solid var(--line); border-radius: 4px 4px 0 0; text-decoration: none; color: var(--fg); background: #fff; }
.tabs a[aria-current=page] { border-bottom-color: #fff; font-weight: 600; }
a.id { font-family: ui-monospace, monospace; }
#detail { margin-top: 1rem; }
#config { max-height: none; }
.chart text { font-size: 12px; fill: var(--fg); }
.chart rect { fill: var(--accent); }
`;
