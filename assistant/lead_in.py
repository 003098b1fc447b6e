"""The short answer written before a tool's ``display`` block (a list the tool formats itself).

The model is asked for one sentence and given few tokens, but a small model often starts the
list itself and is cut off mid-line ("3. Data Visualisation (data science"). ``LeadIn`` lets
text through a whole sentence at a time and stops at the first line break or after
``max_sentences`` (one: a second sentence from a small model tends to repeat the list). What
the token budget cut short is dropped (or, when no sentence finished, shown with an
ellipsis). A sentence that introduces the list (ends with a colon) ends with a full stop
instead, since the display block brings its own heading.
"""

from __future__ import annotations

import re

# ASCII punctuation ends a sentence after a letter or a closing bracket/quote, never after a
# digit ("1. Basics" is a list item); CJK punctuation always does; so does a line break.
_BOUNDARY = re.compile(r"(?<=[A-Za-z)\]\"'”’%][.!?;:])\s|(?<=[。！？；：])|\n")
_ABBREVIATION = re.compile(r"(?:\b(?:e\.g|i\.e|etc|vs|Dr|Mr|Mrs|Ms|Prof|approx)\.)$", re.IGNORECASE)
_LIST_ITEM = re.compile(r"^(?:\d+[.)、]|[-*•])\s*")
_COLON_END = {":": ".", "：": "。"}


class LeadIn:
    def __init__(self, max_sentences: int = 1) -> None:
        self.max_sentences = max_sentences
        self._pending = ""
        self._sentences = 0
        self.done = False
        self.text = ""

    def feed(self, piece: str) -> str:
        """Text to show now (whole sentences only); ``done`` turns true at the end of the lead-in."""
        if self.done:
            return ""
        self._pending += piece
        out = ""
        start = 0
        while not self.done:
            match = _BOUNDARY.search(self._pending, start)
            if match is None:
                break
            end = match.end()
            if match.group() != "\n" and _ABBREVIATION.search(self._pending[:end].rstrip()):
                start = end  # "e.g. " does not end a sentence
                continue
            sentence, self._pending, start = self._pending[:end], self._pending[end:], 0
            line_break = "\n" in sentence
            sentence = sentence.strip()
            if _LIST_ITEM.match(sentence):  # the model began the list: the display has it
                self.done = True
                break
            if sentence:
                out += self._emit(sentence)
            if line_break and self._sentences:
                self.done = True
            if self._sentences >= self.max_sentences:
                self.done = True
        return out

    def finish(self, cut_short: bool = True) -> str:
        """Whatever is still owed when the model stops: a last sentence without punctuation is
        shown only if nothing was shown yet, with an ellipsis if the token budget cut it."""
        tail = self._pending.strip()
        self._pending = ""
        if self.done or not tail or self._sentences or _LIST_ITEM.match(tail):
            self.done = True
            return ""
        self.done = True
        return self._emit(tail.rstrip(",，;；:：") + "…" if cut_short else tail)

    def _emit(self, sentence: str) -> str:
        last = sentence[-1]
        if last in _COLON_END:
            sentence = sentence[:-1] + _COLON_END[last]
        piece = (" " if self.text and not _cjk_end(self.text) else "") + sentence
        self.text += piece
        self._sentences += 1
        return piece


def _cjk_end(text: str) -> bool:
    return bool(text) and "\u3000" <= text[-1] <= "\u9fff" or text.endswith(("。", "！", "？"))
