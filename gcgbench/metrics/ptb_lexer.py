"""The grammar of Stanford CoreNLP 3.4.1's PTBLexer, as regular expressions for the `regex` module.

Restated from stanfordnlp/CoreNLP tag v3.4.1, src/edu/stanford/nlp/process/PTBLexer.flex (macros and
rules, in rule order), for the options `PTBTokenizer -preserveLines -lowerCase` runs it with: ptb3Escaping
defaults (normalizeSpace, normalizeAmpersandEntity, normalizeCurrency, normalizeFractions,
normalizeParentheses, normalizeOtherBrackets, latexQuotes, ptb3Ellipsis, ptb3Dashes, splitAssimilations all
on; escapeForwardSlashAsterisk, americanize, strictTreebank3, invertible off), tokenizeNLs on,
untokenizable=firstDelete. The scanner is `%caseless`: letters in literals match either case, letters in
character classes do not (`_caseless` applies exactly that). JFlex classes, all on UTF-16 code units (a
character outside the BMP is two surrogates and no letter): `[:letter:]` and `[:digit:]` are written \\p{L}
and \\p{Nd} here and become the lexer's own sets (`ptb_classes`, Unicode 6.0), `[:uppercase:]` is \\p{Lu}
(it only decides whether a period after an abbreviation is repeated, and pycocoevalcap drops periods),
`.` is [^\\n] and `[^]` any unit.

Each rule is (pattern, trailing context or None, action); `ptb_tokenize` runs them as JFlex does.
"""

from __future__ import annotations

import regex
from gcgbench.metrics.ptb_classes import digit_units, letter_units


FULL = 0x10000  # every UTF-16 code unit
ASCII = 0x80


def _caseless(pattern: str) -> str:
    """Every ASCII letter outside a character class and outside an escape becomes [xX]."""
    out: list[str] = []
    index, depth = 0, 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            end = index + 2
            if pattern[index + 1] == "p":  # \p{...}
                end = pattern.index("}", index) + 1
            elif pattern[index + 1] == "u":
                end = index + 6
            out.append(pattern[index:end])
            index = end
            continue
        if char == "[" and depth == 0:
            depth = 1
            out.append(char)
            if pattern[index + 1] == "^":
                out.append("^")
                index += 1
            if pattern[index + 1] == "]":  # a literal ']' first in a class
                out.append("\\]")
                index += 1
        elif char == "]" and depth == 1:
            depth = 0
            out.append(char)
        elif depth == 0 and char.isascii() and char.isalpha():
            out.append(f"[{char.lower()}{char.upper()}]")
        else:
            out.append(char)
        index += 1
    return "".join(out)


# ------------------------------------------------------------------------------------------ macros
M: dict[str, str] = {}


def _define(name: str, pattern: str) -> None:
    for key, value in M.items():
        pattern = pattern.replace("{" + key + "}", f"(?:{value})")
    M[name] = pattern


_LETTER_EXTRA = (
    "\u00ad\u0237-\u024f\u02c2-\u02c5\u02d2-\u02df\u02e5-\u02ff\u0300-\u036f\u0370-\u037d\u0384\u0385\u03cf\u03f6"
    "\u03fc-\u03ff\u0483-\u0487\u04cf\u04f6-\u04ff\u0510-\u0525\u055a-\u055f\u0591-\u05bd\u05bf\u05c1\u05c2\u05c4"
    "\u05c5\u05c7\u0615-\u061a\u063b-\u063f\u064b-\u065e\u0670\u06d6-\u06ef\u06fa-\u06ff\u070f\u0711\u0730-\u074f"
    "\u0750-\u077f\u07a6-\u07b1\u07ca-\u07f5\u07fa\u0900-\u0903\u093c\u093e-\u094e\u0951-\u0955\u0962-\u0963"
    "\u0981-\u0983\u09bc-\u09c4\u09c7\u09c8\u09cb-\u09cd\u09d7\u09e2\u09e3\u0a01-\u0a03\u0a3c\u0a3e-\u0a4f"
    "\u0a81-\u0a83\u0abc-\u0acf\u0b82\u0bbe-\u0bc2\u0bc6-\u0bc8\u0bca-\u0bcd\u0c01-\u0c03\u0c3e-\u0c56"
    "\u0d3e-\u0d44\u0d46-\u0d48\u0e30-\u0e3a\u0e47-\u0e4e\u0eb1-\u0ebc\u0ec8-\u0ecd"
)
_MISC_SYMBOL = (
    "+%&~\\^|\\\\\u00a6\u00a7\u00a8\u00a9\u00ac\u00ae\u00af\u00b0-\u00b3\u00b4-\u00ba\u00d7\u00f7\u0387\u05be\u05c0"
    "\u05c3\u05c6\u05f3\u05f4\u0600-\u0603\u0606-\u060a\u060c\u0614\u061b\u061e\u066a\u066d\u0703-\u070d\u07f6"
    "\u07f7\u07f8\u0964\u0965\u0e4f\u1fbd\u2016\u2017\u2020-\u2023\u2030-\u2038\u203b\u203e-\u2042\u2044"
    "\u207a-\u207f\u208a-\u208e\u2100-\u214f\u2190-\u21ff\u2200-\u2bff\u3012\u30fb\uff01-\uff0f\uff1a-\uff20"
    "\uff3b-\uff40\uff5b-\uff65"
)
_ACRONYM_FOLLOWERS = (
    "[A]bout|[A]ccording|[A]dditionally|[A]fter|[A]n|[A]|[A]s|[A]t|[B]ut|[E]arlier|[H]e|[H]er|[H]ere|[H]owever|"
    "[I]f|[I]n|[I]t|[L]ast|[M]any|[M]ore|[M]r\\.|[M]s\\.|[N]ow|[O]nce|[O]ne|[O]ther|[O]ur|[S]he|[S]ince|[S]o|"
    "[S]ome|[S]uch|[T]hat|[T]he|[T]heir|[T]hen|[T]here|[T]hese|[T]hey|[T]his|[W]e|[W]hen|[W]hile|[W]hat|[Y]et|"
    "[Y]ou|{SGML}"
)

_define("SGML", "<(?:[!?][A-Za-z\\-][^>\\r\\n]*|[A-Za-z][A-Za-z0-9_:.\\-]*(?:[ ]+(?:[A-Za-z][A-Za-z0-9_:.\\-]*|"
        "[A-Za-z][A-Za-z0-9_:.\\-]*[ ]*=[ ]*(?:'[^']*'|\"[^\"]*\")))*[ ]*/?|/[A-Za-z][A-Za-z0-9_:.\\-]*)[ ]*>")
_define("SPMDASH", "&(?:MD|mdash|ndash);|[\u0096\u0097\u2013\u2014\u2015]")
_define("SPAMP", "&amp;")
_define("SPPUNC", "&(?:HT|TL|UR|LR|QC|QL|QR|odq|cdq|#[0-9]+);")
_define("SPLET", "&[aeiouAEIOU](?:acute|grave|uml);")
_define("SPACE", "[ \\t\u00a0\u2000-\u200a\u3000]")
_define("SPACES", "{SPACE}+")
_define("NEWLINE", "\\r|\\r?\\n|\u2028|\u2029|\u000b|\u000c|\u0085")
_define("SPACENL", "{SPACE}|{NEWLINE}")
_define("SPACENLS", "(?:{SPACENL})+")
_define("SENTEND", "{SPACENL}(?:{SPACENL}|[\\p{Lu}]|{SGML})")
_define("DIGIT", "[\\p{Nd}\u07c0-\u07c9]")
_define("DATE", "{DIGIT}{1,2}[\\-/]{DIGIT}{1,2}[\\-/]{DIGIT}{2,4}")
_define("NUM", "{DIGIT}+|{DIGIT}*(?:[.:,\u00ad\u066b\u066c]{DIGIT}+)+")
_define("NUMBER", "[\\-+]?{NUM}")
_define("SUBSUPNUM", "[\u207a\u207b\u208a\u208b]?(?:[\u2070\u00b9\u00b2\u00b3\u2074-\u2079]+|[\u2080-\u2089]+)")
_define("FRAC", "(?:{DIGIT}{1,4}[- \u00a0])?{DIGIT}{1,4}(?:\\\\?/|\u2044){DIGIT}{1,4}")
_define("FRAC2", "[\u00bc\u00bd\u00be\u2153-\u215e]")
_define("DOLSIGN", "[A-Z]*\\$|#")
_define("DOLSIGN2", "[\u00a2\u00a3\u00a4\u00a5\u0080\u20a0\u20ac\u060b\u0e3f\u20a4\uffe0\uffe1\uffe5\uffe6]")
_define("LETTER", f"[\\p{{L}}{_LETTER_EXTRA}]|{{SPLET}}")
_define("WORD", "{LETTER}(?:{LETTER}|{DIGIT})*(?:[.!?]{LETTER}(?:{LETTER}|{DIGIT})*)*")
_define("FILENAME_EXT", "bat|bmp|c|class|cgi|cpp|dll|doc|docx|exe|gif|gz|h|htm|html|jar|java|jpeg|jpg|mov|mp3|pdf|"
        "php|pl|png|ppt|ps|py|sql|tar|txt|wav|x|xml|zip")
_define("FILENAME", "(?:{LETTER}|{DIGIT})+(?:[.](?:{LETTER}|{DIGIT})+)*(?:[.]{FILENAME_EXT})")
_define("APOS", "['\u0092\u2019]|&apos;")
_define("APOSETCETERA", "{APOS}|[`\u0091\u2018\u201b]")
_define("HYPHEN", "[-_\u058a\u2010\u2011]")
_define("LD", "[\\p{L}\\p{Nd}]")
_define("THING", "(?:[dDoOlL]{APOSETCETERA}{LD})?{LD}+(?:{HYPHEN}(?:[dDoOlL]{APOSETCETERA}{LD})?{LD}+)*")
_define("THINGA", "[A-Z]+(?:(?:[+&]|{SPAMP})[A-Z]+)+")
_define("THING3", "[A-Za-z0-9]+(?:-[A-Za-z]+){0,2}(?:\\\\?/[A-Za-z0-9]+(?:-[A-Za-z]+){0,2}){1,2}")
_define("ACRO", "[A-Za-z](?:\\.[A-Za-z])*|(?:Canada|Sino|Korean|EU|Japan|non)-U\\.S|U\\.S\\.-(?:U\\.K|U\\.S\\.S\\.R)")
_define("ACRO2", "[A-Za-z](?:\\.[A-Za-z])+|(?:Canada|Sino|Korean|EU|Japan|non)-U\\.S|U\\.S\\.-(?:U\\.K|U\\.S\\.S\\.R)")
_define("HTHING", "[A-Za-z0-9][A-Za-z0-9.,\u00ad]*(?:-(?:[A-Za-z0-9\u00ad]+|{ACRO2}\\.))+")
_define("REDAUX", "{APOS}(?:[msdMSD]|re|ve|ll)")
_define("SWORD", "[A-Za-z\u00ad]*[A-MO-Za-mo-z]\u00ad*")
_define("SREDAUX", "n{APOSETCETERA}t")
_define("APOWORD", "{APOS}n{APOS}?|[lLdDjJ]{APOS}|Dunkin{APOS}|somethin{APOS}|ol{APOS}|{APOS}em|"
        "[A-HJ-XZn]{APOSETCETERA}[\\p{L}]{2}[\\p{L}]*|{APOS}[2-9]0s|{APOS}till?|"
        "[\\p{L}][\\p{L}]*[aeiouyAEIOUY]{APOSETCETERA}[aeiouA-Z][\\p{L}]*|{APOS}cause|cont'd\\.?|'twas|nor'easter|"
        "c'mon|e'er|s'mores|ev'ry|li'l")
_define("APOWORD2", "y{APOS}")
_define("FULLURL", "https?://[^ \\t\\n\\f\\r\"<>|(){}]+[^ \\t\\n\\f\\r\"<>|.!?(){},-]")
_define("LIKELYURL", "(?:(?:www\\.(?:[^ \\t\\n\\f\\r\"<>|.!?(){},]+\\.)+[a-zA-Z]{2,4})|"
        "(?:(?:[^ \\t\\n\\f\\r\"`'<>|.!?(){},-_$]+\\.)+(?:com|net|org|edu)))"
        "(?:/[^ \\t\\n\\f\\r\"<>|()]+[^ \\t\\n\\f\\r\"<>|.!?(){},-])?")
_define("EMAIL", "(?:&lt;|<)?[a-zA-Z0-9][^ \\t\\n\\f\\r\"<>|()\u00a0{}]*@(?:[^ \\t\\n\\f\\r\"<>|(){}.\u00a0]+\\.)*"
        "(?:[^ \\t\\n\\f\\r\"<>|(){}.\u00a0]+)(?:&gt;|>)?")
_define("TWITTER", "@[a-zA-Z_][a-zA-Z_0-9]*|#(?:{LETTER})+")
_define("ABBREV1", "(?:Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec|Mon|Tue|Tues|Wed|Thu|Thurs|Fri|"
        "Ala|Ariz|[A]z|[A]rk|Calif|Colo|Conn|Ct|Dak|[D]el|Fla|Ga|[I]ll|Ind|Kans?|Ky|[L]a|[M]ass|Md|Mich|Minn|"
        "[M]iss|Mo|Mont|Neb|Nev|Okla|[O]re|[P]a|Penn|Tenn|[T]ex|Va|Vt|[W]ash|Wisc?|Wyo|"
        "Inc|Cos?|Corp|Pp?t[ye]s?|Ltd|Plc|Rt|Bancorp|Bhd|Assn|Univ|Intl|Sys|tel|est|ext|sq|"
        "Jr|Sr|Bros|(?:Ed|Ph)\\.D|Blvd|Rd|Esq|etc|al|seq|Bldg)\\.")
_define("ABBREV4", "Mr|Mrs|Ms|[M]iss|Drs?|Profs?|Sens?|Reps?|Attys?|Lt|Col|Gen|Messrs|Govs?|Adm|Rev|Maj|Sgt|Cpl|"
        "Pvt|Capt|Ste?|Ave|Pres|Lieut|Hon|Brig|Co?mdr|Pfc|Spc|Supts?|Det|Mt|Ft|Adj|Adv|Asst|Assoc|Ens|Insp|Mlle|"
        "Mme|Msgr|Sfc|vs|Alex|Wm|Jos|Cie|a\\.k\\.a|cf|TREAS|Ph|{ACRO}|Invt|Elec|Natl|M[ft]g|Dept")
_define("ABBREV2", "{ABBREV4}\\.")
_define("ACRONYM", "{ACRO}\\.")
_define("ABBREV3", "(?:ca|figs?|prop|nos?|art|bldg|prop|pp|op)\\.")
_define("PHONE", "(?:\\([0-9]{2,3}\\)[ \u00a0]?|(?:\\+\\+?)?(?:[0-9]{2,4}[\\- \u00a0])?[0-9]{2,4}[\\- \u00a0])"
        "[0-9]{3,4}[\\- \u00a0]?[0-9]{3,5}|(?:(?:\\+\\+?)?[0-9]{2,4}\\.)?[0-9]{2,4}\\.[0-9]{3,4}\\.[0-9]{3,5}")
_define("LDOTS", "\\.{3,5}|(?:\\.[ \u00a0]){2,4}\\.|[\u0085\u2026]")
_define("FNMARKS", "@+|#+|_+")
_define("ASTS", "\\*+|(?:\\\\\\*){1,3}")
_define("INSENTP", "[,;:\u3001]")
_define("QUOTES", "{APOS}|''|[`\u2018\u2019\u201a\u201b\u201c\u201d\u0091\u0092\u0093\u0094\u201e\u201f\u2039\u203a"
        "\u00ab\u00bb]{1,2}")
_define("DBLQUOT", "\"|&quot;")
_define("TBSPEC", "-(?:RRB|LRB|RCB|LCB|RSB|LSB)-|C\\.D\\.s|pro-|anti-|S(?:&|&amp;)P-500|S(?:&|&amp;)Ls|Cap{APOS}n|"
        "c{APOS}est")
_define("TBSPEC2", "{APOS}[0-9][0-9]")
_define("SMILEY", "[<>]?[:;=][\\-o*']?[()DPdpO\\\\{@|\\[\\]]")
# The flex's first alternative closes its class early ("\\.\\[\\^x=~<>]"): a literal '[^x=~<>]' follows the dot.
_define("ASIANSMILEY", "[\\^x=~<>]\\.\\[\\^x=~<>\\]|[\\-\\^x=~<>']_[\\-\\^x=~<>']|\\([\\-\\^x=~<>'][_.]?[\\-\\^x=~<>']\\)|"
        "\\([\\^x=~<>']-[\\^x=~<>'`]\\)")
_define("ACRONYM_CONTEXT", "{SPACENLS}(?:" + _ACRONYM_FOLLOWERS + "){SPACENL}")
_define("MISCSYMBOL", f"[{_MISC_SYMBOL}]")

# ------------------------------------------------------------------------------------------ rules
# Actions: "text" (the match), "drop" (no token), ("pushback", n), ("text-", replacements...) etc. are
# interpreted by ptb_tokenize._act; see there.
RULES: list[tuple[str, str | None, str]] = [
    ("c[+][+]", None, "text"),
    ("(?:c|f)#", None, "text"),
    ("cannot", None, "pushback3"),
    ("'twas", None, "pushback3"),
    ("'tis", None, "pushback2"),
    ("gonna|gotta|lemme|gimme|wanna", None, "pushback2"),
    ("{SGML}", None, "nbsp"),
    ("{SPMDASH}", None, "mdash"),
    ("{SPAMP}", None, "amp"),
    ("{SPPUNC}", None, "text"),
    ("{WORD}", "{REDAUX}", "soft"),
    ("{SWORD}", "{SREDAUX}", "soft"),
    ("{WORD}", None, "soft"),
    ("{APOWORD}", None, "text"),
    ("{APOWORD2}", "[\\p{L}]", "text"),
    ("{FULLURL}", None, "text"),
    ("{LIKELYURL}", None, "text"),
    ("{EMAIL}", None, "text"),
    ("{TWITTER}", None, "text"),
    ("{REDAUX}", "[^A-Za-z]", "right_quote"),
    ("{SREDAUX}", "[^A-Za-z]", "right_quote"),
    ("{DATE}", None, "text"),
    ("{NUMBER}", None, "soft"),
    ("{SUBSUPNUM}", None, "text"),
    ("{FRAC}", None, "nbsp"),
    ("{FRAC2}", None, "fraction"),
    ("{TBSPEC}", None, "amp"),
    ("{THING3}", None, "text"),
    ("{DOLSIGN}", None, "text"),
    ("{DOLSIGN2}", None, "currency"),
    ("{ACRONYM}", "{ACRONYM_CONTEXT}", "acronym"),
    ("{ABBREV3}", "(?:{SPACENL})?[\\p{Nd}]", "strip"),
    ("(?:pt[eyEY]|co)\\.", "{SPACE}(?:ltd|lim)", "text"),
    ("{ABBREV1}", "{SENTEND}", "period_again"),
    ("{ABBREV1}", "[\\s\\S][\\s\\S]", "text"),
    ("{ABBREV1}", None, "period_again"),
    ("{ABBREV2}", None, "text"),
    ("{ABBREV4}", "{SPACE}", "text"),
    ("{ACRO}", "{SPACENL}", "text"),
    ("{TBSPEC2}", "{SPACENL}", "text"),
    ("{FILENAME}", "{SPACENL}|[.?!,]", "text"),
    ("{WORD}\\.", "{INSENTP}", "soft"),
    ("{PHONE}", None, "phone"),
    ("{DBLQUOT}", "[A-Za-z0-9$]", "left_quote"),
    ("{DBLQUOT}", None, "right_quote"),
    ("\u007f", None, "drop"),
    ("<|&lt;", None, "lt"),
    (">|&gt;", None, "gt"),
    ("{SMILEY}", "[^A-Za-z0-9]", "parens"),
    ("{ASIANSMILEY}", None, "parens"),
    ("\\{", None, "-LCB-"),
    ("\\}", None, "-RCB-"),
    ("\\[", None, "-LSB-"),
    ("\\]", None, "-RSB-"),
    ("\\(", None, "-LRB-"),
    ("\\)", None, "-RRB-"),
    ("-+", None, "hyphens"),
    ("{LDOTS}", None, "..."),
    ("{FNMARKS}", None, "text"),
    ("{ASTS}", None, "text"),
    ("{INSENTP}", None, "text"),
    ("[?!]+", None, "text"),
    ("[.\u00a1\u00bf\u037e\u0589\u061f\u06d4\u0700-\u0702\u07fa\u3002]", None, "text"),
    ("=", None, "text"),
    ("/", None, "text"),
    ("{HTHING}\\.", "{INSENTP}", "soft"),
    ("{HTHING}", None, "soft"),
    ("{THING}\\.", "{INSENTP}", "text"),
    ("{THING}", None, "text"),
    ("{THINGA}\\.", "{INSENTP}", "amp"),
    ("{THINGA}", None, "amp"),
    ("'", "[A-Za-z][^ \\t\\n\\r\u00a0]", "left_quote"),
    ("{REDAUX}", None, "right_quote"),
    ("{SREDAUX}", None, "right_quote"),
    ("{QUOTES}", None, "right_quote"),
    ("<<|>>", None, "text"),
    ("{MISCSYMBOL}", None, "text"),
    ("\u0000|{SPACES}|[\u200b\u200e-\u200f\ufeff]", None, "drop"),
    ("{NEWLINE}", None, "newline"),
    ("&nbsp;", None, "drop"),
    ("[^\\n]", None, "drop"),
]


def _expand(pattern: str, below: int = FULL) -> str:
    """Macros substituted, then `[:letter:]` / `[:digit:]` (written \\p{L} / \\p{Nd}, always inside a class)
    replaced by the lexer's own sets (`ptb_classes`), their code units under `below`."""

    for key in sorted(M, key=len, reverse=True):
        pattern = pattern.replace("{" + key + "}", f"(?:{M[key]})")
    return pattern.replace("\\p{L}", letter_units(below)).replace("\\p{Nd}", digit_units(below))


# Necessary conditions, cheaper than the rule itself (which backtracks over its large letter classes): every
# APOWORD contains an apostrophe-like character (or the '&' of &apos;) before any space; every
# FILENAME ends in a dot and an extension; the "word." rules need a dot and then [,;:、] (none spans a space).
QUICK = {"{APOWORD}": "[^ \t\n]*?['\u0092\u2019&`\u0091\u2018\u201b]", "{FILENAME}": "[^ \t\n]*?[.][A-Za-z]",
         **{head: "[^ \t\n]*?[.][,;:\u3001]" for head in ("{WORD}\\.", "{HTHING}\\.", "{THING}\\.", "{THINGA}\\.")}}


class CompiledRule:
    """One rule, compiled as far as it is used: `quick` (a necessary condition; also the partial-match test of
    which rules can start with a unit) at once, `posix` (the POSIX-longest pattern of text + context) and
    `context` ((text, context) patterns, or None) when a match first passes `quick`. Most rules never get
    that far on captions, and compiling every pattern up front took ~1.3 s of each scoring process."""

    __slots__ = ("quick", "action", "_head", "_context", "_whole", "_posix", "_pair")

    def __init__(self, head: str, context: str | None, action: str, below: int) -> None:
        self._head = _caseless(_expand(head, below))
        self._context = None if context is None else _caseless(_expand(context, below))
        self._whole = self._head if self._context is None else f"(?:{self._head})(?:{self._context})"
        self.quick = regex.compile(QUICK.get(head, self._whole), regex.V0)
        self.action = action
        self._posix = None
        self._pair = None

    @property
    def posix(self):  # noqa: ANN201 - a regex.Pattern
        if self._posix is None:
            self._posix = regex.compile(self._whole, regex.V0 | regex.POSIX)
        return self._posix

    @property
    def context(self):  # noqa: ANN201 - (regex.Pattern, regex.Pattern) or None
        if self._context is not None and self._pair is None:
            self._pair = (regex.compile(self._head, regex.V0), regex.compile(self._context, regex.V0))
        return self._pair


def compiled_rules(below: int = FULL) -> list[CompiledRule]:
    """Every rule, in rule order (JFlex breaks a tie in length by the earlier rule), for texts whose code
    units are all under `below`.

    A pattern's match on a text depends only on whether the text's own characters are in its classes, so
    cutting the large letter and digit classes down to the units under `below` changes no match on such a
    text; with `below=ASCII` they are a few ranges, and the rules compile in a fraction of the time the
    full classes take (captions are nearly always ASCII)."""
    return [CompiledRule(head, context, action, below) for head, context, action in RULES]
