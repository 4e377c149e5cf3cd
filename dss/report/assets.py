"""The page's frame: its inline style sheet and script, hand-written and small, and a Content-Security-Policy that
forbids loading anything (no network, no other file): the page is whole on its own.

The script filters the sample (all, student wrong, student ≠ teacher; `#filter=wrong` in the address picks one
on opening), shows each seed's value in the tables, and marks the page: `data-ready` once it has run,
`data-figures` with the number of figures drawn once the page has loaded (what the browser test reads).
"""
from __future__ import annotations

from html import escape

# inline style and script only; images only as data: URIs
POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"

CSS = """
:root{--fg:#1d2327;--muted:#667085;--line:#d5d9e0;--alt:#f5f6f8;--ok:#137333;--bad:#b42318;--wrong:#fdf1f0}
*{box-sizing:border-box}
body{margin:0;font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--fg)}
header,main{max-width:1280px;margin:0 auto;padding:0 24px}
header{padding-top:18px;border-bottom:1px solid var(--line)}
h1{font-size:22px;margin:0 0 2px}
h2{font-size:18px;margin:26px 0 8px;padding-bottom:3px;border-bottom:1px solid var(--line)}
h3{font-size:15px;margin:16px 0 4px}
h4{font-size:13px;margin:12px 0 2px;font-weight:600}
p{margin:6px 0;max-width:1000px}
nav{margin:8px 0 10px}
nav a{margin-right:16px;color:var(--bad);text-decoration:none}
code,pre{font:12px/1.4 ui-monospace,Menlo,Consolas,monospace;background:var(--alt);border-radius:4px}
code{padding:1px 4px}
pre{padding:10px;overflow:auto}
.muted{color:var(--muted)}
table{border-collapse:collapse;margin:6px 0 12px}
th,td{border:1px solid var(--line);padding:4px 8px;text-align:left;vertical-align:top}
thead th{background:var(--alt)}
table.results th,table.results td{white-space:nowrap}
table.results thead th{white-space:pre-line;text-align:right}
table.results td{text-align:right;font-variant-numeric:tabular-nums}
tr.extra th,tr.extra td{color:var(--muted);font-style:italic;font-weight:normal}
.seeds{display:none;font-size:11px;color:var(--muted)}
body.each-seed .seeds{display:block}
.switch{cursor:pointer;user-select:none}
.row{display:flex;flex-wrap:wrap;column-gap:32px}
#curves{flex:0 1 auto;min-width:0}
#results{flex:1 1 420px;min-width:0}
figure{display:inline-block;margin:6px 18px 6px 0;vertical-align:top;max-width:100%}
figure img{max-width:100%;border:1px solid var(--line)}
figcaption{font-size:12px;color:var(--muted);max-width:600px}
table.sample{width:100%;table-layout:fixed}
table.sample th:nth-child(1){width:52px}
table.sample th:nth-child(2){width:28%}
table.sample th:nth-child(3){width:9%}
table.sample td{overflow-wrap:anywhere;white-space:pre-line}
table.sample tbody tr:nth-child(even){background:var(--alt)}
table.sample tr[data-wrong="1"] td:last-child{background:var(--wrong)}
td.num{color:var(--muted);font-variant-numeric:tabular-nums}
.why{color:var(--muted);font-size:12px;margin-top:2px}
.ok{color:var(--ok);font-weight:bold}
.bad{color:var(--bad);font-weight:bold}
.filters{margin:8px 0}
.filters label{margin-right:14px;cursor:pointer}
details{margin:26px 0 40px}
details summary{cursor:pointer;font-size:18px;font-weight:600}
table.kv th,table.kv td{vertical-align:baseline}
table.kv th{background:var(--alt);font-weight:500;white-space:nowrap}
table.kv td,dl.grid dd{font:12px/1.4 ui-monospace,Menlo,Consolas,monospace;overflow-wrap:anywhere}
dl.grid{display:grid;grid-template-columns:repeat(3,max-content minmax(0,1fr));gap:3px 10px;align-items:baseline}
dl.grid dt{color:var(--muted);text-align:right}
dl.grid dd{margin:0}
"""

JS = """
(function () {
  var rows = [].slice.call(document.querySelectorAll('#sample tbody tr'));
  var shown = document.getElementById('shown');
  function apply(filter) {
    var n = 0;
    rows.forEach(function (r) {
      var hide = (filter === 'wrong' && r.dataset.wrong !== '1') ||
                 (filter === 'disagree' && r.dataset.disagree !== '1');
      r.hidden = hide;
      if (!hide) n++;
    });
    if (shown) shown.textContent = n;
    document.body.dataset.filter = filter;
  }
  document.querySelectorAll('input[name=filter]').forEach(function (b) {
    b.addEventListener('change', function () {
      apply(b.value);
      try { history.replaceState(null, '', '#filter=' + b.value); } catch (e) {}  // some browsers refuse on file:
    });
  });
  var asked = (location.hash.match(/filter=(\\w+)/) || [])[1] || 'all';
  var button = document.querySelector('input[name=filter][value="' + asked + '"]');
  if (button) button.checked = true;
  apply(button ? asked : 'all');
  var seeds = document.getElementById('each-seed');
  if (seeds) seeds.addEventListener('change', function () {
    document.body.classList.toggle('each-seed', seeds.checked);
  });
  window.addEventListener('load', function () {  // how many figures the browser could draw
    var drawn = [].filter.call(document.querySelectorAll('figure img'), function (i) {
      return i.complete && i.naturalWidth > 0;
    });
    document.body.dataset.figures = drawn.length;
  });
  document.body.dataset.ready = '1';
})();
"""

SECTIONS = (("about", "what"), ("curves", "curves"), ("results", "results"), ("costs", "cost per prediction"),
            ("examples", "test examples"), ("provenance", "config and provenance"))


def page(title: str, header: str, body: str) -> str:
    """The whole document: `header` and `body` are HTML already escaped by their makers."""
    nav = "".join(f'<a href="#{anchor}">{name}</a>' for anchor, name in SECTIONS)
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta http-equiv="Content-Security-Policy" content="{POLICY}">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
            f"<header>{header}<nav>{nav}</nav></header>\n<main>\n{body}\n</main>\n<script>{JS}</script>\n"
            "</body>\n</html>\n")
