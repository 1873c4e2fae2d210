// The chat page. Every piece of text from the user or a document goes in through
// textContent or createTextNode (here or in markdown.js), never as HTML (markdown.js reads
// a character reference such as '&amp;' through a detached textarea, whose content is text).
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  // Under this confidence (as shown) an answer is flagged as low; the server sets it
  // (qa.config.LOW_CONFIDENCE), which `qa ask` uses too.
  const UNSURE = Number($("chat").dataset.lowConfidence);
  // nothing to read: white space, controls and format characters, marks that belong to
  // no letter, and the Hangul fillers and blank braille that show nothing (as the service
  // sees an empty question: qa.answer.blank)
  const BLANK = /^[\s\p{Cc}\p{Cf}\p{Zs}\p{Zl}\p{Zp}\p{Mn}\p{Me}\u115f\u1160\u3164\uffa0\u2800]*$/u;
  const blank = (text) => BLANK.test(text);
  const form = $("ask-form");
  const input = $("question");
  const send = $("send");
  const conversation = $("conversation");
  const examples = $("examples");
  const exampleList = $("example-list");
  const panel = $("article-panel");
  const articleTitle = $("article-title");
  const articleText = $("article-text");
  // the service's limits, as the page was served them (a limit may be 0: history off)
  const limit = (value, otherwise) => {
    const n = Number.parseInt(value, 10);
    return Number.isFinite(n) && n >= 0 ? n : otherwise;
  };
  const chat = $("chat").dataset;
  const maxHistory = limit(chat.maxHistory, 20);
  const maxChars = limit(chat.maxQuestionChars, 1000);
  const maxBody = limit(chat.maxBodyBytes, 65536);
  const hint = $("ask-hint");
  const HINT = hint.textContent;
  const status = $("status"); // said to screen readers: waiting, stopped, cleared
  const SEND = send.textContent;
  // a question unanswered this long is given up (the service answers in milliseconds;
  // a request held by a broken network would otherwise wait for ever)
  const TIMEOUT_MS = 60_000;
  const reducedMotion = window.matchMedia("(prefers-reduced-motion: reduce)");

  let history = []; // [{question, answer}], oldest first: the service is stateless
  let pending = null; // the AbortController of the question being answered
  let generation = 0; // bumped by "New conversation" so late answers are dropped
  let lastCitationButton = null;
  let opening = 0; // bumped by each citation opened, so that a slow fetch shows no stale text

  // The service's offsets count characters (code points), as Python does; a JavaScript
  // string counts UTF-16 units, two for an emoji. So text is cut by code points.
  const codePoints = (text) => Array.from(text);
  const cut = (points, from, to) => points.slice(from, to).join("");

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // Only the conversation scrolls (scrollIntoView would scroll the page too); smoothly
  // unless the reader asked for less motion
  function scrollTo(top) {
    conversation.scrollTo({ top, behavior: reducedMotion.matches ? "auto" : "smooth" });
  }
  const scrollToEnd = () => scrollTo(conversation.scrollHeight);

  // A new answer is read from its start: its question at the top of the conversation when
  // the two are taller than it, else the end
  function scrollToTurn(turn) {
    const top = conversation.scrollTop + turn.getBoundingClientRect().top -
      conversation.getBoundingClientRect().top - 8;
    scrollTo(Math.min(top, conversation.scrollHeight));
  }

  // Whether the keyboard is in the article panel (reading a citation): an answer that
  // arrives meanwhile does not take it away
  const readingArticle = () => !panel.hidden && panel.contains(document.activeElement);

  function setPending(controller) {
    pending = controller;
    send.textContent = controller ? "Stop" : SEND;
    send.setAttribute("aria-label", controller ? "Stop waiting for the answer" : SEND);
    send.classList.toggle("stop", Boolean(controller));
  }

  // --- asking ---------------------------------------------------------------------

  async function ask(question) {
    if (pending || blank(question)) return;
    say("");
    const controller = new AbortController();
    setPending(controller);
    // an example pressed is hidden with the rest: the keyboard goes to the question box
    if (examples.contains(document.activeElement)) input.focus();
    examples.hidden = true;
    const mine = generation;
    const timer = setTimeout(() => controller.abort("timeout"), TIMEOUT_MS);
    status.textContent = "Looking for the answer…";

    const turn = el("li", "turn user");
    // the question is the turn's heading: heading navigation walks the conversation
    turn.append(el("span", "visually-hidden", "You asked: "), el("h2", "text", question));
    conversation.append(turn);
    const thinking = el("li", "turn bot thinking");
    thinking.setAttribute("aria-label", "Thinking");
    thinking.append(el("span", "dots", "Thinking"));
    conversation.append(thinking);
    conversation.setAttribute("aria-busy", "true");
    scrollToEnd();

    let reply;
    try {
      const response = await fetch("/api/ask", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: requestBody(question),
        signal: controller.signal,
      });
      const data = await response.json().catch(() => null);
      if (!response.ok) {
        const why = data && data.detail ? data.detail : response.statusText;
        const what = response.status >= 500 ? "could not answer" : "refused the question";
        throw new Error(`The service ${what} (${response.status}): ${why}`);
      }
      if (!data) throw new Error("The service sent an answer that could not be read.");
      reply = data;
    } catch (err) {
      reply = { error: failure(err, controller.signal.reason) };
    } finally {
      clearTimeout(timer);
    }
    if (mine !== generation) return; // the conversation was cleared meanwhile
    thinking.remove();
    conversation.removeAttribute("aria-busy");
    setPending(null);
    status.textContent = "";

    if (reply.error) {
      conversation.append(renderError(reply.error));
      if (blank(input.value)) input.value = question; // easy to retry
    } else {
      history.push({ question, answer: reply.answer });
      conversation.append(renderAnswer(reply));
    }
    scrollToTurn(turn);
    if (!readingArticle()) input.focus();
  }

  // What the user is told of a question that got no answer
  function failure(err, reason) {
    if (reason === "timeout") {
      return `The service did not answer within ${TIMEOUT_MS / 1000} seconds. ` +
        "Check that it is running, then try again.";
    }
    if (reason === "stopped") return "Stopped waiting for the answer. Ask again when ready.";
    if (err instanceof TypeError) return UNREACHABLE;
    return err.message;
  }
  const UNREACHABLE = "Could not reach the service. Check that it is running, then try again.";

  // The request: the question and the latest turns that fit the service's body limit
  // (long turns in a script of 3- or 4-byte UTF-8 characters can fill it before the turn
  // limit; the service reads only the last turn, so the oldest go first)
  const utf8 = new TextEncoder();
  function requestBody(question) {
    const bytes = (text) => utf8.encode(text).length;
    let turns = maxHistory > 0 ? history.slice(-maxHistory) : []; // slice(-0) is all
    let body = JSON.stringify({ question, history: turns });
    while (turns.length > 1 && bytes(body) > maxBody) {
      turns = turns.slice(1);
      body = JSON.stringify({ question, history: turns });
    }
    return body;
  }

  // An error is said once, as the conversation (a polite live list) says each new turn: an
  // alert inside it was said twice. A hidden "Error:" tells it from an answer.
  function renderError(message) {
    const li = el("li", "turn bot error");
    const text = el("p", "text");
    text.append(el("span", "visually-hidden", "Error: "), message);
    li.append(text);
    return li;
  }

  function renderAnswer(data) {
    const li = el("li", "turn bot");
    const citations = data.citations || [];
    if (data.answer === null || data.answer === undefined) {
      li.classList.add("abstain");
      li.append(el("p", "answer", "The documents do not say."));
      if (citations.length) {
        li.append(el("h3", "sources-title", "Related passages (not an answer)"));
        li.append(renderCitations(citations, "related"));
      }
      return li;
    }
    const answer = el("p", "answer");
    const [from, to] = citations.length ? answerIn(data, citations[0]) : [-1, -1];
    if (shownAsMarkdown(citations[0]) && to > from) {
      answer.append(...QAMarkdown.render(citations[0].text, from, to, true)); // as its sentence shows it
    }
    if (!answer.textContent.trim()) answer.textContent = data.answer; // (nothing shown: as written)
    li.append(el("span", "visually-hidden", "Answer: "), answer);
    if (citations.length) {
      li.append(renderQuote(citations[0], from, to));
      li.append(el("h3", "sources-title", "Sources"));
      li.append(renderCitations(citations, "sources"));
    }
    if (typeof data.confidence === "number") {
      const shown = data.confidence.toFixed(2);
      if (Number(shown) < UNSURE) { // compared as shown
        // the service's estimate that this answer is right is under the threshold: say so first
        li.classList.add("unsure");
        li.insertBefore(el("p", "unsure-note",
          "Low confidence: this may be wrong, or the documents may not answer it. " +
          "Check the quoted sentence."), li.firstChild);
      }
      const meta = el("p", "meta", `confidence ${shown}`);
      meta.title = "The service's estimate, from 0 to 1, that this answer is right";
      li.append(meta);
    }
    return li;
  }

  // A Markdown document's answer and sentences show as the document shows them (links,
  // code, emphasis: markdown.js); the article panel shows its source, where each citation
  // is checked.
  const shownAsMarkdown = (citation) =>
    Boolean(citation) && window.QAMarkdown !== undefined && QAMarkdown.isMarkdown(citation.doc);

  // Where the answer lies in the citation's text, [from, to) in code points, or [-1, -1].
  // answer_start and answer_end are document offsets; the answer may be a short span or the
  // whole sentence.
  function answerIn(data, citation) {
    if (Number.isInteger(data.answer_start) && Number.isInteger(data.answer_end) &&
        data.answer_start >= citation.start && data.answer_end <= citation.end) {
      return [data.answer_start - citation.start, data.answer_end - citation.start];
    }
    const at = citation.text.indexOf(data.answer);
    if (at < 0) return [-1, -1];
    const from = codePoints(citation.text.slice(0, at)).length;
    return [from, from + codePoints(data.answer).length];
  }

  // The first citation's sentence with the answer, [from, to) of it, marked inside it.
  function renderQuote(citation, from, to) {
    const quote = el("blockquote", "quote");
    const text = codePoints(citation.text);
    if (shownAsMarkdown(citation)) {
      quote.append(...QAMarkdown.render(citation.text, from, to));
    } else if (from >= 0 && to > from) {
      quote.append(cut(text, 0, from), el("mark", "answer-span", cut(text, from, to)),
        cut(text, to));
    } else {
      quote.append(citation.text);
    }
    quote.append(" ", citationButton(citation, 1, "cite-inline"));
    return quote;
  }

  // Each citation's sentence; when they come from more than one document, each names its
  // own, so that an answer taken from another document than the one asked about shows.
  function renderCitations(citations, kind) {
    const list = el("ol", `citations ${kind}`);
    const several = new Set(citations.map((c) => c.doc)).size > 1;
    citations.forEach((c, i) => {
      const item = el("li", "citation");
      item.append(citationButton(c, i + 1, "cite"));
      if (several) item.append(el("span", "cite-doc", c.doc), " ");
      const sentence = el("span", "cite-text");
      if (shownAsMarkdown(c)) sentence.append(...QAMarkdown.render(c.text));
      else sentence.textContent = c.text;
      item.append(sentence);
      list.append(item);
    });
    return list;
  }

  function citationButton(citation, n, className) {
    const button = el("button", className, `[${n}]`);
    button.type = "button";
    button.setAttribute("aria-label",
      `Citation ${n}: show sentence ${citation.sentence} in ${citation.doc}`); // as qa ask numbers it
    button.addEventListener("click", () => {
      lastCitationButton = button;
      openArticle(citation);
    });
    return button;
  }

  // --- the article panel ----------------------------------------------------------

  // The document as the service holds it now, fetched at each click: the index may have
  // been rebuilt since the answer (or since the last click), and an answer's citation holds
  // only if its sentence is still at its offsets (openArticle). No cache: a cached copy
  // would show an old text as if it were current.
  async function fetchDocument(doc) {
    const path = doc.split("/").map(encodeURIComponent).join("/");
    let r;
    try {
      r = await fetch(`/api/documents/${path}`);
    } catch {
      throw new Error(UNREACHABLE); // the network's own words ("Failed to fetch") say less
    }
    if (r.status === 404) {
      throw new Error(
        "This document is no longer in the index: it was removed or renamed since the " +
        "answer was given. Ask again for an answer from the current documents.");
    }
    if (!r.ok) throw new Error(`The document could not be loaded (${r.status}).`);
    return r.json();
  }

  // On a narrow screen the panel covers the chat (chat.css): the chat is then inert, so
  // that Tab stays in the panel and nothing hidden under it can be pressed or typed into.
  const covering = window.matchMedia("(max-width: 760px)");
  const chatArea = $("chat");
  const coverChat = () => { chatArea.inert = !panel.hidden && covering.matches; };
  covering.addEventListener("change", coverChat);

  async function openArticle(citation) {
    const mine = ++opening;
    panel.hidden = false;
    coverChat();
    document.body.classList.add("article-open");
    articleTitle.textContent = citation.doc;
    unmark(); // nothing of the last citation stays marked while this one loads
    let data;
    try {
      data = await fetchDocument(citation.doc);
    } catch (err) {
      if (mine !== opening) return; // another citation was opened meanwhile
      const error = el("p", "error", err.message);
      error.setAttribute("role", "alert");
      error.tabIndex = -1;
      articleText.replaceChildren(error);
      delete articleText.dataset.key;
      error.focus(); // the keyboard follows (the citation may be under the panel, inert)
      return;
    }
    if (mine !== opening) return;
    const key = `${data.index_version}\u0000${data.id}`;
    if (articleText.dataset.key !== key) renderArticle(data, key);
    // The text is the service's now: after the documents were changed and indexed again,
    // a citation from before holds only if its sentence is still at its offsets.
    const target = articleText.querySelector(
      `[data-start="${citation.start}"][data-end="${citation.end}"]`);
    if (!target || target.textContent !== citation.text) {
      const stale = el("p", "stale",
        "This document has changed since the answer was given, so the cited sentence " +
        "is not where it was. Ask again for an answer from the current text.");
      stale.setAttribute("role", "status");
      stale.tabIndex = -1;
      articleText.prepend(stale);
      articleText.scrollTop = 0;
      stale.focus({ preventScroll: true });
      return;
    }
    target.classList.add("highlight");
    target.setAttribute("aria-current", "true");
    // scroll the panel alone, the sentence in its middle
    articleText.scrollTop =
      target.offsetTop - (articleText.clientHeight - target.offsetHeight) / 2;
    target.focus({ preventScroll: true });
  }

  function unmark() {
    for (const old of articleText.querySelectorAll(".sentence.highlight")) {
      old.classList.remove("highlight");
      old.removeAttribute("aria-current");
    }
    articleText.querySelector(".stale")?.remove();
  }

  function renderArticle(data, key) {
    const parts = [];
    const text = codePoints(data.text);
    let at = 0;
    for (const s of data.sentences) {
      if (s.start > at) parts.push(document.createTextNode(cut(text, at, s.start)));
      const span = el("span", "sentence", cut(text, s.start, s.end));
      span.dataset.sentence = String(s.sentence);
      span.dataset.start = String(s.start);
      span.dataset.end = String(s.end);
      span.tabIndex = -1;
      parts.push(span);
      at = s.end;
    }
    if (at < text.length) parts.push(document.createTextNode(cut(text, at)));
    articleText.replaceChildren(...parts);
    articleText.dataset.key = key;
  }

  function hidePanel() {
    panel.hidden = true;
    coverChat();
    document.body.classList.remove("article-open");
  }

  function closeArticle() {
    const wasReading = panel.contains(document.activeElement) ||
      document.activeElement === document.body;
    hidePanel();
    if (!wasReading) return; // typing in the question box, say: the keyboard stays there
    if (lastCitationButton && document.contains(lastCitationButton)) lastCitationButton.focus();
    else input.focus();
  }

  // --- examples and wiring --------------------------------------------------------

  async function loadExamples() {
    try {
      const r = await fetch("/api/examples");
      if (!r.ok) return;
      const data = await r.json();
      for (const q of data.examples || []) {
        const item = el("li");
        const button = el("button", "example", q);
        button.type = "button";
        button.addEventListener("click", () => ask(q));
        item.append(button);
        exampleList.append(item);
      }
      examples.hidden = !exampleList.children.length || conversation.children.length > 0;
    } catch {
      // examples are a convenience; the chat works without them
    }
  }

  function newConversation() {
    generation += 1;
    history = [];
    if (pending) pending.abort("cleared");
    setPending(null);
    conversation.replaceChildren();
    conversation.removeAttribute("aria-busy");
    hidePanel(); // its citation belonged to the conversation cleared
    examples.hidden = !exampleList.children.length;
    input.value = "";
    say("");
    status.textContent = "New conversation started.";
    input.focus();
  }

  // what is wrong with the question, said under the box; the hint again once it is fixed
  function say(problem) {
    if (hint.textContent === (problem || HINT)) return; // a live region: say it once
    hint.textContent = problem || HINT;
    hint.classList.toggle("problem", Boolean(problem));
    input.setAttribute("aria-invalid", problem ? "true" : "false");
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const question = input.value;
    if (pending) {
      // the button reads "Stop" while waiting; Enter in the box asks it to wait
      if (event.submitter === send) pending.abort("stopped");
      else say("Wait for the answer to the last question, or press Escape to stop waiting.");
      return;
    }
    if (blank(question)) {
      say("Type a question first.");
      input.focus();
      return;
    }
    const length = codePoints(question).length; // counted as the service counts them
    if (length > maxChars) {
      say(`The question has ${length} characters; shorten it to ${maxChars} or fewer.`);
      input.focus();
      return;
    }
    say("");
    input.value = "";
    ask(question);
  });

  input.addEventListener("input", () => {
    if (hint.classList.contains("problem") && codePoints(input.value).length <= maxChars) {
      say("");
    }
  });

  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  $("new-conversation").addEventListener("click", newConversation);
  $("close-article").addEventListener("click", closeArticle);
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape") return;
    if (!panel.hidden) closeArticle();
    else if (pending) pending.abort("stopped");
  });

  input.focus();
  loadExamples();
})();
