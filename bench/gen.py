#!/usr/bin/env python3
"""Generates the benchmark sale: N items, each a ~300-word Markdown description
with a heading, a list, a link and a small table, as files that both flashsale
(items_dir) and Hugo (content/items) read unchanged: TOML front matter in +++."""
import os
import random
import sys

WORDS = ("light sturdy warm compact durable classic everyday travel outdoor kitchen "
         "desk garden winter summer cotton steel bamboo ceramic wool leather soft bright "
         "quiet simple handy gentle modern timeless useful elegant practical portable "
         "the a with for and of in on to from by every your this that our made").split()


def paragraph(rng, n):
    words = [rng.choice(WORDS) for _ in range(n)]
    words[0] = words[0].capitalize()
    return " ".join(words) + "."


def description(rng, i, n):
    other = (i * 7919 + 13) % n
    return "\n".join([
        paragraph(rng, 70),
        "",
        "## Details",
        "",
        paragraph(rng, 60),
        "",
        f"- {paragraph(rng, 12)}",
        f"- {paragraph(rng, 12)}",
        f"- {paragraph(rng, 12)}",
        "",
        f"See also [item {other}](/items/item-{other:05d}/) in this sale.",
        "",
        "| Size | Weight | Colour |",
        "|------|--------|--------|",
        f"| {rng.randint(1, 99)} cm | {rng.randint(50, 999)} g | {rng.choice(['red', 'blue', 'grey'])} |",
        f"| {rng.randint(1, 99)} cm | {rng.randint(50, 999)} g | {rng.choice(['red', 'blue', 'grey'])} |",
        "",
        paragraph(rng, 90),
        "",
    ])


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def site_toml(top="", rest=""):
    """The benchmarks' site.toml: `top` among the top-level keys, `rest` after [gate]."""
    return f"""name = "bench"
title = "Benchmark Sale"
base_url = "https://sale.example.com/"
start = 2030-01-01T10:00:00+08:00
end = 2030-01-01T11:00:00+08:00
currency = "EUR"
items_dir = "items"
{top}
[gate]
url = "https://gate.example.com"
{rest}"""


def main():
    n = int(sys.argv[1])
    out = sys.argv[2]
    here = os.path.dirname(os.path.abspath(__file__))
    rng = random.Random(42)
    sale, hugo = os.path.join(out, "sale"), os.path.join(out, "hugo")
    svg = open(os.path.join(here, "..", "static", "images", "mug.svg")).read()
    write(os.path.join(sale, "site.toml"), site_toml("paginate = 48\n"))
    write(os.path.join(sale, "static", "img", "item.svg"), svg)
    for i in range(n):
        cents = rng.randint(100, 9999)
        md = f"""+++
sku = "SKU-{i:05d}"
title = "Item {i} {rng.choice(WORDS)} {rng.choice(WORDS)}"
price = "{cents // 100}.{cents % 100:02d}"
original_price = "{cents // 100 + 20}.{cents % 100:02d}"
stock = {rng.randint(1, 500)}
image = "img/item.svg"
+++
{description(rng, i, n)}"""
        name = f"item-{i:05d}.md"
        write(os.path.join(sale, "items", name), md)
        write(os.path.join(hugo, "content", "items", name), md)
    # Hugo: the same pages with equivalent templates (inline critical CSS,
    # fingerprinted stylesheet, script and image; paginated listing by 48).
    write(os.path.join(hugo, "config.toml"), """baseURL = "https://sale.example.com/"
title = "Benchmark Sale"
paginate = 48
disableKinds = ["taxonomy", "term", "RSS", "sitemap", "section"]
[markup.goldmark.renderer]
unsafe = true
""")
    theme = os.path.join(here, "..", "themes", "default")
    write(os.path.join(hugo, "assets", "style.css"), open(os.path.join(theme, "static", "style.css")).read())
    write(os.path.join(hugo, "assets", "runtime.js"), open(os.path.join(theme, "static", "runtime.js")).read())
    write(os.path.join(hugo, "assets", "img", "item.svg"), svg)
    write(os.path.join(hugo, "layouts", "partials", "critical.css"), open(os.path.join(theme, "critical.css")).read())
    write(os.path.join(hugo, "layouts", "_default", "baseof.html"), """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>{{ block "title" . }}{{ .Site.Title }}{{ end }}</title>
<link rel="canonical" href="{{ .Permalink }}">
<style>{{ partial "critical.css" . | safeCSS }}</style>
{{ $css := resources.Get "style.css" | fingerprint }}{{ $js := resources.Get "runtime.js" | fingerprint }}
<link rel="preload" as="style" href="{{ $css.RelPermalink }}" onload="this.rel='stylesheet'">
<script src="{{ $js.RelPermalink }}" defer></script>
</head>
<body data-state="pending" data-sale-start="1893463200000" data-toggle="/sale.js">
<header class="top"><a href="/">{{ .Site.Title }}</a></header>
<main>{{ block "main" . }}{{ end }}</main>
<footer class="bottom">{{ .Site.Title }}</footer>
</body>
</html>
""")
    write(os.path.join(hugo, "layouts", "_default", "single.html"), """{{ define "title" }}{{ .Title }} · {{ .Site.Title }}{{ end }}
{{ define "main" }}
<article class="item">{{ with .Params.image }}{{ $img := resources.Get . | fingerprint }}<img class="shot" src="{{ $img.RelPermalink }}" alt="">{{ end }}

<div class="info"><h1>{{ .Title }}</h1>
<p class="price"><strong>€{{ .Params.price }}</strong> <s>€{{ .Params.original_price }}</s></p>
<p class="stock">{{ .Params.stock }} at this price · one per customer</p>
<p class="status" data-status>Sale starts <time datetime="2030-01-01T10:00:00+08:00">Tuesday, 1 January 2030 at 10:00 (UTC+08:00)</time>.</p>
<form class="order" method="post" data-order-form><input type="hidden" name="sku" value="{{ .Params.sku }}"><input type="hidden" name="quantity" value="1"><button type="submit" disabled data-buy>Buy now</button></form>
</div></article>
<section class="description">{{ .Content }}</section>
{{ end }}
""")
    write(os.path.join(hugo, "layouts", "index.html"), """{{ define "main" }}<h1>{{ .Site.Title }}</h1>
<ul class="grid">{{ $p := .Paginate (where .Site.RegularPages "Section" "items") 48 }}{{ range $p.Pages }}{{ $img := resources.Get (printf "%s" .Params.image) | fingerprint }}
<li><a href="{{ .RelPermalink }}"><img src="{{ $img.RelPermalink }}" alt="" loading="lazy"><span class="t">{{ .Title }}</span> <strong>€{{ .Params.price }}</strong> <s>€{{ .Params.original_price }}</s></a></li>{{ end }}
</ul>
{{ if $p.HasNext }}<a href="{{ $p.Next.URL }}">Next</a>{{ end }}{{ end }}
""")
    write(os.path.join(hugo, "layouts", "404.html"), """{{ define "main" }}<h1>Page not found</h1>{{ end }}""")
    write(os.path.join(hugo, "content", "ended.md"), "+++\ntitle = \"This sale has ended\"\nurl = \"/ended.html\"\n+++\nThank you for taking part.\n")


if __name__ == "__main__":
    main()
