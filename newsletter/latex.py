"""LaTeX in arXiv titles, abstracts and model summaries as Unicode text for people to read.

arXiv metadata is written in LaTeX (``FG$^2$-GDN``, ``41.5\\% less``, ``$2\\times$``). Readers of
the e-mail, the web pages and the feeds get Unicode (``FG²-GDN``, ``41.5% less``, ``2×``) through
``pylatexenc``'s latex2text; the Markdown archive keeps the source, which GitHub renders.
The result is plain text: callers escape it like any other untrusted text.
"""

from __future__ import annotations

import re
from functools import lru_cache

from pylatexenc.latex2text import LatexNodes2Text, MacroTextSpec, get_default_latex_context_db
from pylatexenc.latexwalker import LatexWalkerError

# Font switches pylatexenc drops with their argument; readers want the argument.
_KEEP_ARGUMENT = ("textsf", "texttt", "textsc", "textrm", "textup", "textnormal", "textmd")
_KEEP_ARGUMENT_MATH = ("mathsf", "mathtt", "mathrm")


def _converter() -> LatexNodes2Text:
    db = get_default_latex_context_db()
    db.add_context_category(
        "newsletter-fonts",
        prepend=True,
        macros=[MacroTextSpec(n, "%(1)s") for n in (*_KEEP_ARGUMENT, *_KEEP_ARGUMENT_MATH)],
    )
    return LatexNodes2Text(latex_context=db, math_mode="text", strict_latex_spaces=False)


_CONVERTER = _converter()
# Spacing commands whose argument is not a group (\mkern-2mu): dropped before parsing.
_KERN = re.compile(r"\\(?:m?kern|mskip|hskip)\s*-?[\d.]+\s*(?:mu|pt|em|ex)")
_SUPERSCRIPT = dict(zip("0123456789+-=()nia", "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁼⁽⁾ⁿⁱᵃ", strict=True))
_SUBSCRIPT = dict(zip("0123456789+-=()aeoxijklmnpst", "₀₁₂₃₄₅₆₇₈₉₊₋₌₍₎ₐₑₒₓᵢⱼₖₗₘₙₚₛₜ", strict=True))
_DOLLAR = re.compile(r"(?<!\\)\$")
_PERCENT = re.compile(r"(?<!\\)%")
_MATH = re.compile(r"(?<!\\)\$\$?(.+?)(?<!\\)\$\$?", re.DOTALL)
_SCRIPT = re.compile(r"([\^_])(?:\{([^{}]*)\}|([A-Za-z0-9+\-=()]))")
_SPACES = re.compile(r"[ \t]{2,}")
# Relations and operators pylatexenc glues to their neighbours: spaced as in typeset maths.
_SPACED = re.compile(r"\s*([≤≥≈≠≡∈∉⊂⊆→←↔⇒⇔×·±∝≪≫])\s*")


def _scripts(math: str) -> str:
    """``x^{2}``/``x_1`` as Unicode super/subscripts where every character has one."""

    def one(m: re.Match[str]) -> str:
        body = m.group(2) if m.group(2) is not None else m.group(3)
        table = _SUPERSCRIPT if m.group(1) == "^" else _SUBSCRIPT
        if body and all(c in table for c in body):
            return "{}" + "".join(table[c] for c in body)  # {} ends a macro name before it
        return m.group(0)

    return _SCRIPT.sub(one, math)


def _convert(latex: str) -> str:
    try:
        text: str = _CONVERTER.latex_to_text(_KERN.sub("", latex))
    except LatexWalkerError:  # pylatexenc is tolerant; should it give up, show the source
        return latex
    return text


def _math(m: re.Match[str]) -> str:
    text = _convert(_scripts(m.group(1)))
    return _SPACED.sub(lambda s: f" {s.group(1)} " if s.group(1) not in "×·" else s.group(1), text)


@lru_cache(maxsize=8192)
def latex_to_text(text: str) -> str:
    """``text`` with its LaTeX rendered as Unicode; text without ``\\`` or ``$`` is returned as
    is. A lone ``$`` is kept as a dollar sign, a bare ``%`` as a percent sign (not a comment)."""
    if "\\" not in text and "$" not in text:
        return text
    source = _PERCENT.sub(r"\\%", text)
    if len(_DOLLAR.findall(source)) % 2:
        source = _DOLLAR.sub(r"\\$", source)
    out: list[str] = []
    last = 0
    for m in _MATH.finditer(source):
        out.append(_convert(source[last : m.start()]))
        out.append(_math(m))
        last = m.end()
    out.append(_convert(source[last:]))
    return _SPACES.sub(" ", "".join(out))


def latex_to_text_markdown(text: str) -> str:
    """A model's Markdown with its LaTeX maths rendered, the Markdown itself left alone: only
    ``$…$`` spans and ``\\%``-style escapes are converted."""
    if "\\" not in text and "$" not in text:
        return text
    source = text
    if len(_DOLLAR.findall(source)) % 2 == 0:
        source = _MATH.sub(lambda m: _math(m), source)
    return re.sub(r"\\([%&#$])", r"\1", source)
