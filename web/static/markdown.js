// Inline Markdown, shown as a Markdown document shows it: links, code spans, emphasis,
// character references and backslash escapes in an answer or a cited sentence of a .md
// document. Nothing becomes HTML from the text: every node is built here, its text set as
// text; a link opens only an absolute http(s) or mailto address (a relative one is the
// document's own and means nothing on this page, so its text shows, unlinked). The
// service's offsets count code points in the source, so each piece of the shown text
// keeps the source range it came from, and a range of the source (the answer inside its
// sentence) can be marked in what is shown.
"use strict";

window.QAMarkdown = (function () {
  const isMarkdown = (doc) => typeof doc === "string" && doc.toLowerCase().endsWith(".md");

  const PUNCTUATION = /[!-/:-@[-`{-~\p{P}\p{S}]/u;
  const ASCII_PUNCTUATION = /[!-/:-@[-`{-~]/;
  const SPACE = /\s/u;
  const ENTITY = /^&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});/;
  const SCHEME = /^[A-Za-z][A-Za-z0-9+.-]{1,31}:[^\s<>\p{Cc}]*$/u;
  const EMAIL = /^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
  const OPENS = /^(?:https?:|mailto:)/i;
  const LONGEST = 2000; // code points: a longer text is shown as written (render)
  // the page's hidden note that describes every link (chat.html)
  const NEW_TAB = "new-tab-note";

  // A named reference decoded by the browser itself (a textarea's content is text, and the
  // string is only '&name;'), or null when it names nothing.
  const decoder = document.createElement("textarea");
  function decodeEntity(raw) {
    if (raw[1] === "#") {
      const hex = raw[2] === "x" || raw[2] === "X";
      const n = Number.parseInt(raw.slice(hex ? 3 : 2, -1), hex ? 16 : 10);
      const ok = n > 0 && n <= 0x10ffff && !(n >= 0xd800 && n <= 0xdfff);
      return ok ? String.fromCodePoint(n) : "\ufffd";
    }
    decoder.innerHTML = raw;
    const value = decoder.value;
    // '&copyright;' is no reference, though HTML reads its '&copy' (and shows '©right;')
    return value === raw || (value.endsWith(";") && raw !== "&semi;") ? null : value;
  }

  // --- parsing: tokens with their source ranges (code point offsets) ----------------

  // Tokens: {t: "text", from, to} shown as in the source; {t: "lit", text, from, to} one
  // shown piece for several source characters (an escape, a reference); {t: "code", from,
  // to} a code span's content; {t: "link", href, title, kids, from, to}; {t: "image", kids,
  // title, from, to} (its description shown, never loaded); {t: "delim", ch, lo, hi,
  // open, close} a run of emphasis marks, of which [lo, hi) is still unmatched.
  function parse(cp, from, to, inLink) {
    const tokens = [];
    let plain = from; // start of the text not yet made a token
    const flush = (at) => {
      if (at > plain) tokens.push({ t: "text", from: plain, to: at });
    };
    let i = from;
    while (i < to) {
      const c = cp[i];
      let token = null;
      let next = i + 1;
      if (escapes(cp, i, to)) {
        token = { t: "lit", text: cp[i + 1], from: i, to: i + 2 };
        next = i + 2;
      } else if (c === "\\" && (cp[i + 1] === "\n" || cp[i + 1] === "\r")) {
        token = { t: "lit", text: "", from: i, to: i + 1 }; // a hard line break: a space here
      } else if (c === "`") {
        const found = codeSpan(cp, i, to);
        if (found) [token, next] = found;
        else next = runEnd(cp, i, to, "`"); // an unclosed run is text, all of it
      } else if (c === "&") {
        const ref = reference(cp, i, to);
        if (ref) {
          next = ref[1];
          token = { t: "lit", text: ref[0], from: i, to: next };
        }
      } else if (c === "<") {
        const found = autolink(cp, i, to);
        if (found) [token, next] = found;
      } else if ((c === "[" && !inLink) || (c === "!" && cp[i + 1] === "[")) {
        // no link inside a link's text, but an image may be one's text (a badge)
        const found = link(cp, i, to, c === "!");
        if (found) [token, next] = found;
      } else if (c === "*" || c === "_" || c === "~") {
        next = runEnd(cp, i, to, c);
        token = delimiter(cp, c, i, next, from, to);
      }
      if (token) {
        flush(i);
        tokens.push(token);
        plain = next;
      }
      i = next;
    }
    flush(to);
    emphasis(tokens);
    return tokens;
  }

  function runEnd(cp, i, to, c) {
    while (i < to && cp[i] === c) i += 1;
    return i;
  }

  // `code`: a run of n backticks closed by the next run of exactly n
  function codeSpan(cp, i, to) {
    const open = runEnd(cp, i, to, "`");
    const n = open - i;
    for (let j = open; j < to; ) {
      if (cp[j] !== "`") { j += 1; continue; }
      const close = runEnd(cp, j, to, "`");
      if (close - j === n) {
        let a = open;
        let b = j;
        // one space (or line ending) is taken off each end when both have one
        const edge = (ch) => ch === " " || ch === "\n" || ch === "\r";
        const blankOnly = cp.slice(a, b).every(edge);
        if (b - a >= 2 && edge(cp[a]) && edge(cp[b - 1]) && !blankOnly) { a += 1; b -= 1; }
        return [{ t: "code", from: a, to: b }, close];
      }
      j = close;
    }
    return null;
  }

  // <https://example.org> or <someone@example.org>
  function autolink(cp, i, to) {
    let j = i + 1;
    while (j < to && cp[j] !== ">" && cp[j] !== "<" && !SPACE.test(cp[j])) j += 1;
    if (j >= to || cp[j] !== ">") return null;
    const inner = cp.slice(i + 1, j).join("");
    let href = null;
    if (SCHEME.test(inner)) href = inner;
    else if (EMAIL.test(inner)) href = `mailto:${inner}`;
    else return null;
    const kids = [{ t: "text", from: i + 1, to: j }];
    return [{ t: "link", href, title: "", kids, from: i, to: j + 1 }, j + 1];
  }

  // [text](destination "title") or ![description](source)
  let memo = new Map(); // [i, to, image] -> link()'s answer, for one render
  function link(cp, i, to, image) {
    const key = `${i} ${to} ${image}`;
    if (!memo.has(key)) memo.set(key, readLink(cp, i, to, image));
    return memo.get(key);
  }
  function readLink(cp, i, to, image) {
    const open = image ? i + 1 : i;
    let depth = 0;
    let j = open;
    for (; j < to; j += 1) {
      if (escapes(cp, j, to)) { j += 1; continue; }
      if (cp[j] === "`") { // a code span inside the text is read whole
        const found = codeSpan(cp, j, to);
        j = (found ? found[1] : runEnd(cp, j, to, "`")) - 1; // an unclosed run is text, all of it
        continue;
      }
      // a link may not contain a link: when one starts inside, the outer brackets are text
      if (cp[j] === "[" && j > open && !image && cp[j - 1] !== "!" && link(cp, j, to, false)) return null;
      if (cp[j] === "[") depth += 1;
      else if (cp[j] === "]" && --depth === 0) break;
    }
    if (j >= to || cp[j + 1] !== "(") return null;
    const label = [open + 1, j];
    const target = destination(cp, j + 2, to);
    if (!target) return null;
    const [dest, title, end] = target;
    const kids = parse(cp, label[0], label[1], true);
    if (image) return [{ t: "image", kids, title: title || dest, from: i, to: end }, end];
    return [{ t: "link", href: dest, title, kids, from: i, to: end }, end];
  }

  // A reference at k ('&amp;'): [its text, the index after it], or null
  function reference(cp, k, to) {
    const m = ENTITY.exec(cp.slice(k, Math.min(to, k + 40)).join(""));
    const text = m && decodeEntity(m[0]);
    return text === null || !m ? null : [text, k + m[0].length]; // (ASCII: units are points)
  }

  // A backslash that escapes the ASCII mark after it ('\\*'): the mark is text
  function escapes(cp, k, to) {
    return cp[k] === "\\" && k + 1 < to && ASCII_PUNCTUATION.test(cp[k + 1]);
  }

  // What position k of a destination or a title reads as: a reference ('&amp;'), an escaped
  // mark, or the character itself; [its text, the index after it, whether it is itself].
  function literal(cp, k, to) {
    const ref = cp[k] === "&" && reference(cp, k, to);
    if (ref) return [ref[0], ref[1], false];
    if (escapes(cp, k, to)) return [cp[k + 1], k + 2, false];
    return [cp[k], k + 1, true];
  }

  // After '](': the destination, an optional title, then ')'; [dest, title, end] or null.
  function destination(cp, k, to) {
    const skip = () => { while (k < to && (cp[k] === " " || cp[k] === "\t" || cp[k] === "\n")) k += 1; };
    skip();
    let dest = "";
    if (cp[k] === "<") {
      k += 1;
      while (k < to && cp[k] !== ">" && cp[k] !== "<" && cp[k] !== "\n") {
        const [text, next] = literal(cp, k, to);
        dest += text;
        k = next;
      }
      if (cp[k] !== ">") return null;
      k += 1;
    } else {
      let parens = 0;
      while (k < to && !SPACE.test(cp[k]) && !/\p{Cc}/u.test(cp[k])) {
        const [text, next, plain] = literal(cp, k, to);
        if (plain && cp[k] === "(") parens += 1;
        else if (plain && cp[k] === ")" && --parens < 0) break;
        dest += text;
        k = next;
      }
    }
    const afterDest = k;
    skip();
    let title = "";
    const close = { '"': '"', "'": "'", "(": ")" }[cp[k]];
    if (close && (k > afterDest || dest === "")) { // a title is set apart by white space
      k += 1;
      while (k < to && cp[k] !== close) {
        const [text, next] = literal(cp, k, to);
        title += text;
        k = next;
      }
      if (k >= to) return null;
      k += 1;
      skip();
    }
    if (cp[k] !== ")") return null;
    return [dest, title, k + 1];
  }

  // A run of '*', '_' or '~' that may open or close emphasis (CommonMark's flanking rules;
  // '~~' strikes through, as GitHub shows it).
  function delimiter(cp, ch, i, end, from, to) {
    const before = i > from ? cp[i - 1] : " ";
    const after = end < to ? cp[end] : " ";
    const left = !SPACE.test(after) &&
      (!PUNCTUATION.test(after) || SPACE.test(before) || PUNCTUATION.test(before));
    const right = !SPACE.test(before) &&
      (!PUNCTUATION.test(before) || SPACE.test(after) || PUNCTUATION.test(after));
    let open = left;
    let close = right;
    if (ch === "_") {
      open = left && (!right || PUNCTUATION.test(before));
      close = right && (!left || PUNCTUATION.test(after));
    }
    if (ch === "~" && end - i !== 2) { open = false; close = false; }
    return { t: "delim", ch, lo: i, hi: end, start: i, end, open, close, styles: [] };
  }

  // Pairs of runs become styles on the tokens between them (innermost pairs first);
  // what is left of a run shows as text.
  function emphasis(tokens) {
    const style = { "*": ["em", "strong"], _: ["em", "strong"], "~": ["del", "del"] };
    for (let c = 0; c < tokens.length; c += 1) {
      const closer = tokens[c];
      if (closer.t !== "delim" || !closer.close) continue;
      while (closer.hi > closer.lo) {
        let o = c - 1;
        const len = (d) => d.end - d.start; // the whole run, as first read
        const fits = (d) => !((d.close || closer.open) && (len(d) + len(closer)) % 3 === 0 &&
          !(len(d) % 3 === 0 && len(closer) % 3 === 0)); // CommonMark's rule of three
        while (o >= 0 && !(tokens[o].t === "delim" && tokens[o].open &&
          tokens[o].ch === closer.ch && tokens[o].hi > tokens[o].lo && fits(tokens[o]))) o -= 1;
        if (o < 0) break;
        const opener = tokens[o];
        const n = closer.ch === "~" ? 2 :
          (opener.hi - opener.lo >= 2 && closer.hi - closer.lo >= 2 ? 2 : 1);
        for (let k = o + 1; k < c; k += 1) {
          if (tokens[k].t === "delim") tokens[k].open = tokens[k].close = false; // used up
          (tokens[k].styles ||= []).push(style[closer.ch][n - 1]);
        }
        opener.hi -= n;
        closer.lo += n;
      }
    }
  }

  // --- showing ------------------------------------------------------------------------

  // The pieces shown, in order: {from, to, exact, text, styles, link}: an exact piece
  // shows its source range character for character; another shows ``text``.
  function pieces(tokens, styles, link, out) {
    for (const tk of tokens) {
      const s = tk.styles ? styles.concat(tk.styles) : styles;
      if (tk.t === "text" || tk.t === "code") {
        const code = tk.t === "code" ? s.concat(["code"]) : s;
        if (tk.to > tk.from) out.push({ from: tk.from, to: tk.to, exact: true, styles: code, link });
      } else if (tk.t === "lit") {
        out.push({ text: tk.text, from: tk.from, to: tk.to, exact: false, styles: s, link });
      } else if (tk.t === "delim") {
        if (tk.hi > tk.lo) {
          out.push({ from: tk.lo, to: tk.hi, exact: true, styles: s, link });
        }
      } else if (tk.t === "link") {
        const safe = OPENS.test(tk.href) ? { href: tk.href, title: tk.title } : null;
        pieces(tk.kids, s, link || safe, out);
      } else if (tk.t === "image") {
        pieces(tk.kids, s.concat(["image"]), link, out);
      }
    }
    return out;
  }

  // From the outermost to the innermost: each level wraps the consecutive pieces that
  // have it in one element (a link once, however its text is styled or marked).
  const LEVELS = [
    [(p) => p.link, (link) => {
      const a = document.createElement("a");
      a.href = link.href;
      if (link.title) a.title = link.title; // the document's own title, if it gave one
      a.target = "_blank";
      a.rel = "noopener noreferrer";
      a.setAttribute("aria-describedby", NEW_TAB); // "opens in a new tab", said once
      return a;
    }],
    ...["strong", "em", "del", "image", "code"].map((name) => [
      (p) => p.styles.includes(name),
      () => {
        if (name !== "image") return document.createElement(name);
        const span = document.createElement("span");
        span.className = "md-image"; // an image's description, the image never loaded
        return span;
      },
    ]),
    [(p) => p.marked, () => {
      const mark = document.createElement("mark");
      mark.className = "answer-span";
      return mark;
    }],
  ];

  function build(shown, level) {
    if (level === LEVELS.length) return [document.createTextNode(shown.map((p) => p.text).join(""))];
    const [key, make] = LEVELS[level];
    const nodes = [];
    for (let i = 0; i < shown.length; ) {
      let j = i + 1;
      while (j < shown.length && key(shown[j]) === key(shown[i])) j += 1;
      const inner = build(shown.slice(i, j), level + 1);
      const value = key(shown[i]);
      if (value) {
        const node = make(value);
        node.append(...inner);
        nodes.push(node);
      } else {
        nodes.push(...inner);
      }
      i = j;
    }
    return nodes;
  }

  // The nodes that show ``text`` (a .md document's sentence, or a span of one), the source
  // range [markFrom, markTo) (code points) marked as the answer; with ``only``, the nodes
  // that show that range alone, unmarked (the answer, as its sentence shows it: a span
  // inside a link's text is still a link).
  function render(text, markFrom = -1, markTo = -1, only = false) {
    const cp = Array.from(text);
    // parsing is quadratic at worst ('[a](' over and over): a sentence is at most a few
    // hundred characters, but a table row is kept whole, so a longer text shows as written
    const asWritten = [{ t: "text", from: 0, to: cp.length }];
    memo = new Map();
    let shown = cut(cp, cp.length <= LONGEST ? parse(cp, 0, cp.length, false) : asWritten, markFrom, markTo);
    if (markFrom < markTo && !shown.some((p) => p.marked && p.text)) {
      // the range lies where nothing shows (a link's address): the text as written, marked
      shown = cut(cp, asWritten, markFrom, markTo);
    }
    if (!only) return build(shown, 0);
    return build(shown.filter((p) => p.marked).map((p) => ({ ...p, marked: false })), 0);
  }

  // The pieces that show ``tokens``, each marked when in [markFrom, markTo): an exact piece
  // is cut where the mark begins and ends; another is marked whole.
  function cut(cp, tokens, markFrom, markTo) {
    const shown = [];
    for (const p of pieces(tokens, [], null, [])) {
      const cuts = [p.from, p.to];
      if (p.exact) {
        for (const at of [markFrom, markTo]) if (at > p.from && at < p.to) cuts.splice(-1, 0, at);
        cuts.sort((x, y) => x - y);
      }
      for (let k = 0; k + 1 < cuts.length; k += 1) {
        const [a, b] = [cuts[k], cuts[k + 1]];
        // a line ending inside a sentence (Markdown wrapped over lines) shows as a space
        const piece = p.exact ? cp.slice(a, b).join("").replace(/[\r\n]/g, " ") : p.text;
        shown.push({ ...p, text: piece, marked: a < markTo && b > markFrom });
      }
    }
    return shown;
  }

  return { isMarkdown, render };
})();
