"""Prompt-injection detector: a deterministic, regex-based scorer for free text handed to agents.

The detector looks for the tell-tale shapes of injected instructions rather than for specific
sentences: instruction-override phrases (English, French, German, Spanish, Italian, Portuguese),
fake system/role markers and chat-template tokens, tool-call syntax embedded in data, zero-width
and homoglyph obfuscation, base64 / percent-encoded / HTML-entity payloads (decoded and rescanned)
and exfiltration links (markdown images or URLs that carry placeholders for the conversation).

Every signal has a weight in 0..1; per flag the strongest signal counts, and the flags are combined
as a noisy-OR: ``score = 1 - Π(1 - w_flag)``. A text is an injection when ``score >= THRESHOLD``.
Obfuscation on its own (a zero-width character, a mixed-script word) stays below the threshold;
combined with any other signal it pushes the text over it.

The module is pure Python, has no Django dependency, and never returns the matched text.
"""

# ruff: noqa: E501  (regex tables: alternations read better unbroken than split mid-word)
from __future__ import annotations

import base64
import binascii
import html
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from urllib.parse import unquote

__all__ = ["FLAGS", "THRESHOLD", "InjectionResult", "normalise", "scan_injection", "scan_params"]

THRESHOLD = 0.5
MAX_DECODE_DEPTH = 2
MAX_ENCODED_CHUNKS = 32

FLAGS = (
    "instruction_override",
    "role_play",
    "role_marker",
    "prompt_leak",
    "secrecy",
    "addressed_to_ai",
    "tool_call_syntax",
    "data_exfiltration",
    "exfiltration_link",
    "encoded_payload",
    "zero_width",
    "homoglyph",
    "obfuscated_text",
)


@dataclass(frozen=True, slots=True)
class InjectionResult:
    score: float
    flags: tuple[str, ...]

    @property
    def is_injection(self) -> bool:
        return self.score >= THRESHOLD


CLEAN = InjectionResult(0.0, ())

# ---------------------------------------------------------------------------------------------------
# Normalisation
# ---------------------------------------------------------------------------------------------------

# Invisible format characters. The soft hyphen is stripped but never flagged (hyphenation in pasted text).
_ZERO_WIDTH = "\u200b\u200c\u200d\u200e\u200f\u2060\u2061\u2062\u2063\u2064\ufeff\u180e\u034f"
_BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_INVISIBLE = _ZERO_WIDTH + _BIDI + "\u00ad"
_STRIP_INVISIBLE = {ord(c): None for c in _INVISIBLE}
_ZW_IN_WORD = re.compile(rf"[A-Za-z][{_ZERO_WIDTH}{_BIDI}]+(?=[A-Za-z])")
# Unicode tag characters (U+E0000 block) smuggle ASCII invisibly; U+1F3F4 + tags is a legitimate flag emoji.
_TAG_RUN = re.compile("[\U000e0020-\U000e007e]{2,}\U000e007f?")
_FLAG_EMOJI = re.compile("\U0001f3f4[\U000e0030-\U000e007a]{2,8}\U000e007f")

# Cyrillic, Greek and a few other letters that render like Latin ones.
_HOMOGLYPHS = {
    # Cyrillic lower / upper
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p",
    "с": "c", "т": "t", "у": "y", "х": "x", "ѕ": "s", "і": "i", "ї": "i", "ј": "j", "ԁ": "d",
    "ԛ": "q", "ԝ": "w", "һ": "h", "ӏ": "l", "ɡ": "g", "ո": "n", "ս": "u", "օ": "o", "ց": "g",
    "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P", "С": "C",
    "Т": "T", "Х": "X", "У": "Y", "І": "I", "Ј": "J", "Ѕ": "S", "Ԁ": "D", "Ԝ": "W", "Ү": "Y",
    # Greek lower / upper
    "α": "a", "ο": "o", "ρ": "p", "ι": "i", "κ": "k", "ν": "v", "τ": "t", "υ": "u", "χ": "x",
    "ε": "e", "ϲ": "c", "ϳ": "j",
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N",
    "Ο": "O", "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X",
    # Latin-ish look-alikes NFKC keeps
    "ı": "i", "ȷ": "j", "ɑ": "a", "ɩ": "i", "ʟ": "L",
}  # fmt: skip
_HOMOGLYPH_TABLE = str.maketrans(_HOMOGLYPHS)
_HOMOGLYPH_CLASS = "".join(sorted(_HOMOGLYPHS))
_MIXED_SCRIPT_WORD = re.compile(
    rf"\b(?=[\w]*[A-Za-z])(?=[\w]*[{_HOMOGLYPH_CLASS}])[\w{_HOMOGLYPH_CLASS}]{{2,}}\b"
)

_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"})
_LEET_WORD = re.compile(r"(?=\S*[A-Za-z])(?=\S*[013457@$])[A-Za-z013457@$]{3,}")

_WS = re.compile(r"[ \t\u00a0\u2000-\u200a\u3000]+")


def _fold(text: str) -> str:
    """Lower-case, accent-free, whitespace-collapsed copy used for phrase matching."""
    decomposed = unicodedata.normalize("NFKD", text)
    without_marks = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _WS.sub(" ", without_marks.lower().replace("’", "'").replace("`", "'"))


def normalise(text: str) -> str:
    """NFKC, strip invisible characters, map homoglyphs to Latin, fold case/accents/whitespace."""
    text = unicodedata.normalize("NFKC", text).translate(_STRIP_INVISIBLE)
    return _fold(text.translate(_HOMOGLYPH_TABLE))


# ---------------------------------------------------------------------------------------------------
# Signals: (flag, weight, compiled pattern) over the folded text
# ---------------------------------------------------------------------------------------------------

_I = re.IGNORECASE | re.MULTILINE

_VERBS = (
    r"ignore|ignoring|disregard|disregarding|forget|override|overrule|bypass|circumvent|discard|abandon"
    r"|neglect|set aside|throw out|stop following|(?:do not|don'?t|no longer) (?:follow|obey|adhere to)"
    r"|ignorez|ignorer|ignores|oubliez|oublie|oublier|ne (?:tenez|tiens) (?:pas|plus) compte d(?:es|u|e)"
    r"|faites abstraction d(?:es|e)|fais abstraction d(?:es|e)"
    r"|ignoriere|ignorieren sie|ignorier|vergiss|vergessen sie|missachte|missachten sie|uberschreibe"
    r"|ignora|ignorar|ignoren|ignorad|olvida|olvide|olvidad|olvidate de|haz caso omiso (?:a|de)"
    r"|haga caso omiso (?:a|de)|omite|dimentica|dimenticate|ignorate|esqueca|esquece|desconsidere"
)
_QUALIFIERS = {
    "all", "any", "every", "your", "these", "those", "previous", "prior", "above", "earlier",
    "preceding", "foregoing", "original", "initial", "existing", "system", "safety", "security",
    "developer", "old", "former", "current", "programmed", "default", "built-in", "hidden",
    "toutes", "tous", "vos", "tes", "precedentes", "precedente", "anterieures", "ci-dessus", "initiales",
    "alle", "deine", "ihre", "vorherigen", "bisherigen", "obigen", "vorigen", "fruheren", "ursprunglichen",
    "todas", "todos", "tus", "sus", "anteriores", "previas", "tutte", "precedenti", "tue", "as",
}  # fmt: skip
_FIRST_PERSON = {
    "my", "our", "mes", "nos", "mon", "ma", "notre", "meine", "unsere", "meinen", "mis", "nuestras",
    "nuestros", "mie", "nostre", "minhas", "nossas", "i", "we",
}  # fmt: skip
_NOUNS = (
    r"instructions?|instruction set|prompts?|rules?|directives?|guidelines?|guardrails?|constraints?"
    r"|restrictions?|polic(?:y|ies)|programming|training|system message|commands?|orders?|filters?"
    r"|protocols?|safeguards?|consignes?|regles|directives|anweisungen|instruktionen|befehle|regeln"
    r"|vorgaben|richtlinien|einschrankungen|instrucciones|reglas|ordenes|indicaciones|restricciones"
    r"|istruzioni|regole|instrucoes|regras"
)
_OVERRIDE = re.compile(rf"\b(?:{_VERBS})\b((?:\s+[\w'\-]+){{0,5}}?)\s+(?:{_NOUNS})\b(\s+[\w'\-]+)?", _I)
_QUOTES = "'\"“”‘’«»„"
# "ignore the previous instructions about the parking garage": a retraction scoped to a topic.
_TOPIC_SCOPED = re.compile(
    r"\s*(?:about|regarding|concerning|re:|on the|on how|for the|for our|for your|sent|we sent|i sent"
    r"|from (?:hr|it|finance|facilities|procurement|payroll|accounting|the)|in (?:my|our|the|last)"
    r"|concernant|sur le|zum|zur|uber|sobre|del|de la)\b",
    _I,
)
_FORGET_EVERYTHING = re.compile(
    r"\b(?:forget|disregard|ignore) (?:everything|all|anything)(?: (?:that|which))?"
    r" (?:above|before|(?:prior|previous)(?=\s*(?:[.,;:!]|$))|you (?:were|have been|'ve been) (?:told|given|taught)|so far|up to now)"
    r"|\b(?:ignore|disregard) (?:all|everything) (?:of )?(?:the )?(?:above|preceding|foregoing)"
    r"|\boublie(?:z)? tout(?: ce)?(?: qu'on| que l'on| qui)?(?: t'a| vous a)?"
    r"|\bvergiss (?:alles|alle)(?:,)? (?:was|bisher|vorher|zuvor|oben)"
    r"|\bolvida(?:te de)? todo(?: lo)? (?:anterior|que te|lo anterior)"
    r"|\bdimentica tutto",
    _I,
)
_OVERRIDE_OTHER = [
    (
        0.7,
        r"\byour (?:new|real|true|actual|only|primary|updated) (?:task|goal|objective|instructions?|purpose"
        r"|job|mission|directive|role) (?:is|are|now|will be)\b",
    ),
    (
        0.7,
        r"\b(?:the )?(?:above|previous|prior|preceding|earlier) (?:instructions?|rules?|prompt|text|messages?)"
        r" (?:was|were|are|is) (?:a test|fake|wrong|void|obsolete|cancelled|canceled|outdated|no longer valid)",
    ),
    (0.45, r"\b(?:new|updated|revised|real|actual|true|override|priority) (?:system )?instructions?\s*[:\-]"),
    (
        0.45,
        r"\b(?:instead|rather)(?: of \w+ing)?,? (?:you (?:must|should|will|are to)|do the following|perform the"
        r" following)\b",
    ),
    (0.3, r"\bfrom now on,? (?:you|your)\b"),
    (
        0.6,
        r"\b(?:tu es|vous etes) (?:maintenant|desormais|a present)\b|\bnouvelles (?:instructions|consignes)\b"
        r"|\b(?:ta|votre) (?:nouvelle|vraie|veritable) (?:tache|mission)\b",
    ),
    (
        0.6,
        r"\bdu bist (?:jetzt|nun|ab sofort|ab jetzt)\b|\bneue (?:anweisungen|instruktionen)\b"
        r"|\bdeine (?:neue|eigentliche|wahre|echte) aufgabe\b|\bab (?:jetzt|sofort),? (?:bist|wirst|musst) du\b",
    ),
    (
        0.6,
        r"\bahora eres\b|\bnuevas instrucciones\b|\btu (?:nueva|verdadera|autentica) (?:tarea|mision)\b"
        r"|\ba partir de ahora,? (?:eres|debes|tu)\b|\bd'ora in poi\b|\bnuove istruzioni\b|\bnovas instrucoes\b",
    ),
]
_ROLE_PLAY = [
    (0.6, r"\byou are now (?:an?|in|my|the|dan|free|unrestricted|jailbroken|unfiltered|no longer)\b"),
    (0.5, r"\byou (?:are|will be) no longer (?:an?|bound|restricted|limited|required)\b"),
    (0.5, r"\b(?:pretend|imagine) (?:that )?(?:you are|you're|to be)\b|\broleplay as\b|\brole-play as\b"),
    (
        0.5,
        r"\b(?:you will |you must |now )?act as (?:an? |the )?(?:unrestricted|unfiltered|uncensored|evil|rogue"
        r"|jailbroken|different|new|root|admin|administrator|system|superuser|developer)\b",
    ),
    (
        0.7,
        r"\bdo anything now\b|\bdan mode\b|\bjailbr(?:oken|eak)\b|\b(?:developer|god|admin|debug|sudo|root)"
        r" mode (?:enabled|activated|on|unlocked)\b|\benable (?:developer|god|admin|debug|sudo) mode\b",
    ),
    (
        0.5,
        r"\bwithout (?:any )?(?:restrictions|filters|limitations|guardrails|censorship|safety (?:checks|filters))"
        r"\b|\bno (?:ethical|moral|safety) (?:guidelines|constraints|restrictions|limits)\b",
    ),
    (
        0.4,
        r"\b(?:no longer|not) bound by\b|\bfree (?:from|of) (?:all |your |any |of )*(?:rules|restrictions|guidelines)\b",
    ),
]
_ROLE_MARKERS = [
    (
        0.85,
        r"<\|(?:im_start|im_end|system|user|assistant|endoftext|eot_id|start_header_id|end_header_id"
        r"|begin_of_text)\|>",
    ),
    (0.8, r"\[/?inst\]|<</?sys>>"),
    (
        0.65,
        r"</?(?:system|sys|system_prompt|system-prompt|instructions?|developer|admin|assistant|im_start)>",
    ),
    (0.6, r"^\s*#{1,4}\s*(?:system|instruction|instructions|developer|new instructions)\b"),
    (0.6, r"^\s*\[(?:system|admin|developer|assistant|sys|instruction|instructions|system message|ai)\]"),
    (0.5, r"\[(?:system|admin|developer|sys|system message|system instruction)\]"),
    (
        0.6,
        r"^\s*(?:system|assistant|developer|ai|sys)\s*:\s*(?=you\b|ignore|from now|new\b|the (?:user|assistant)"
        r"|override|important|as an?\b|please (?:ignore|disregard|forward|send)|forget|disregard)",
    ),
    (0.5, r"^\s*(?:human|user)\s*:.*\n(?:.*\n){0,3}?\s*(?:assistant|ai)\s*:"),
    (
        0.6,
        r"(?:-{3,}|={3,}|\*{3,})\s*(?:end|begin|start) (?:of )?(?:the )?(?:system|user|instructions?|prompt"
        r"|input|context|document|conversation)",
    ),
    (0.5, r"\b(?:end|begin) of (?:the )?(?:system prompt|user input|instructions|conversation|prompt)\b"),
    (0.5, r"\bsystem (?:override|prompt override|instruction|command)s?\s*[:!\-]"),
    (0.2, r"^\s*(?:system|assistant)\s*:"),
]
_PROMPT_LEAK = [
    (
        0.7,
        r"\b(?:reveal|print|show|output|repeat|display|dump|leak|disclose|return|tell (?:me|us)|give (?:me|us)"
        r"|write out|recite|paste) (?:me |us )?(?:all )?(?:of )?(?:your|the) (?:full |entire |complete |exact )?"
        r"(?:system prompt|initial prompt|hidden (?:prompt|instructions)|original instructions|instructions above"
        r"|confidential instructions|system message|prompt above|instructions you were given|preprompt"
        r"|developer (?:message|prompt))",
    ),
    (
        0.55,
        r"\b(?:output|repeat|print|reproduce|copy|echo|recite) (?:all |the |everything )*(?:text|words|content"
        r"|messages?|lines?)? ?(?:above|before this|preceding this|that came before)\b",
    ),
    (
        0.6,
        r"\bwhat (?:is|are|was|were) your (?:system prompt|initial instructions|original instructions"
        r"|hidden instructions)\b",
    ),
    (
        0.6,
        r"\b(?:revele|affiche|montre)(?:z)? (?:ton|votre|le) prompt|\b(?:zeige|verrate|gib) (?:mir )?(?:deinen|den)"
        r" (?:system ?prompt|systemprompt)|\b(?:muestra|revela|dime) (?:tu|el) (?:prompt|mensaje) (?:del )?sistema",
    ),
]
_SECRECY = [
    (
        0.5,
        r"\b(?:do not|don'?t|never|without) (?:tell|telling|inform|informing|notify|notifying|alert|alerting"
        r"|warn|warning|mention|mentioning|let) (?:the |any )?(?:user|customer|human|operator|admin|administrator"
        r"|anyone|requester|security team)\b",
    ),
    (
        0.45,
        r"\b(?:silently|secretly|covertly|quietly) (?:forward|send|copy|exfiltrate|transfer|delete|approve"
        r"|change|add|grant|bcc)\b|\bwithout (?:asking for )?(?:confirmation|approval|asking)\b",
    ),
    (
        0.45,
        r"\bthis (?:instruction|message|note) (?:is|must (?:be|remain)|should (?:be|remain)) (?:hidden|secret"
        r"|confidential) from\b|\b(?:hide|conceal) this (?:from|instruction)\b",
    ),
]
_ADDRESSED = [
    (
        0.45,
        r"\b(?:note|message|instructions?|attention|important|notice|reminder|p\.?s\.?)(?: to| for)?"
        r" (?:the |any |all )?(?:ai|a\.i\.|assistant|agent|llm|language model|chatbot|bot|copilot|gpt|chatgpt"
        r"|claude|model|automated (?:system|assistant|agent))s?\b(?: [\w']+){0,3}\s*[:,!\-]",
    ),
    (0.55, r"\bif you are an? (?:ai|llm|language model|assistant|agent|automated|bot|chatbot)\b"),
    (
        0.55,
        r"\b(?:when|while|once|if) (?:the |an |any )?(?:ai|assistant|agent|llm|model|bot)"
        r" (?:reads|processes|summari[sz]es|parses|sees|ingests|handles) this\b",
    ),
    (
        0.4,
        r"^\s*(?:hey|dear|hi|hello|attention|ok|okay),? (?:ai|assistant|agent|chatgpt|claude|gpt|copilot|bot)\b",
    ),
    (
        0.45,
        r"\b(?:ai|assistant|agent|llm|bot|model)s? (?:must|should|shall|has to|needs to) (?:now )?(?:\w+ly )?(?:ignore"
        r"|forward|send|approve|execute|call|run|reply|transfer|delete|grant|output)\b",
    ),
    (
        0.5,
        r"\b(?:a l'attention de|note pour) (?:l'|l |le |la )?(?:ia|assistant|agent|intelligence artificielle)\b"
        r"|\b(?:hinweis|nachricht|anweisung) (?:an|fur) (?:die |den )?(?:ki|assistenten|agenten)\b"
        r"|\b(?:nota|mensaje|aviso) para (?:la |el )?(?:ia|asistente|agente)\b",
    ),
]
_SENSITIVE_NOUN = (
    r"(?:database|credentials|passwords?|api[ _-]?keys?|secrets?|access tokens?|tokens|conversation(?: history)?"
    r"|chat history|pii|ssns?|card numbers|(?:customer|client|employee|staff|user|personnel) (?:list|data|records"
    r"|database|details)|salar(?:y|ies)|payroll(?: data)?|private keys?|session cookies|cookies|thread)"
)
_GENERIC_NOUN = r"(?:data|records|e-?mails|inbox|mailbox|contacts|files|documents|attachments|invoices)"
_DATA_EXFIL = [
    *[
        (
            weight,
            rf"\b(?:send|forward|email|e-mail|upload|post|export|copy|transmit|leak|exfiltrate|share|bcc|dump"
            rf"|sync) (?:me |us |them )?(?:all|every|each|the (?:full|entire|complete|whole)|a (?:full|complete)"
            rf" (?:copy|list|dump|export) of)(?: of)?(?: the| your| our| their)? (?:\w+ ){{0,2}}{noun}\b"
            rf".{{0,80}}?\b(?:to|at|into|via)\b",
        )
        for weight, noun in ((0.5, _SENSITIVE_NOUN), (0.35, _GENERIC_NOUN))
    ],
    (
        0.55,
        r"\b(?:send|forward|email|upload|post|transmit|leak|exfiltrate|share|include|append|paste|reveal|output)"
        r" (?:me |us )?(?:all |the |your |any |its )?(?:stored |saved |current |admin |user )?(?:credentials"
        r"|passwords?|api[ _-]?keys?|secret keys?|access tokens?|session (?:tokens?|cookies)|private keys?"
        r"|system prompt|conversation history|chat history|environment variables|env vars|\.env file)\b"
        r"(?! (?:policy|policies|reset|manager|change|requirements|rules|document|guide|expiry|rotation))",
    ),
    (
        0.5,
        r"\b(?:envoie|envoyez|transfere|transferez) (?:tous |toutes |l'ensemble des )?(?:les )?(?:donnees|emails"
        r"|mots de passe|identifiants|fichiers)\b|\b(?:sende|schicke|leite) (?:alle|samtliche) (?:daten|e-mails"
        r"|passworter|zugangsdaten|dateien)\b|\b(?:envia|reenvia|manda) (?:todos |todas )?(?:los |las )?(?:datos"
        r"|correos|contrasenas|credenciales|archivos)\b",
    ),
]
_NEGATION_BEFORE = re.compile(
    r"(?:never|not|n't|no one|nobody|do not|don't|won't|will never)\W+(?:\w+\W+){0,3}$"
)
_TOOL_CALL = [
    (0.7, r"[\"'](?:tool_calls?|function_call|tool_use|tool_code|tool_name|function_name)[\"']\s*:"),
    (
        0.65,
        r"[\"'](?:tool|function|name|action|command|cmd|recipient_name|api)[\"']\s*:\s*[\"'][\w.\-]+[\"']\s*,"
        r"\s*[\"'](?:arguments|args|parameters|params|input|action_input|kwargs|payload)[\"']\s*:",
    ),
    (
        0.65,
        r"<\|?/?(?:tool_call|tool_use|tool_code|function_call|function_calls|functioncall|invoke|api_call"
        r"|tool_result|execute_tool|antml:invoke)\|?[\s>/=]",
    ),
    (0.5, r"<(?:tool|execute|run|command|action)(?:\s+name=|\s*>)"),
    (0.6, r"^\s*action\s*:\s*[\w.\-]+\s*\n\s*action[ _]input\s*:"),
    (
        0.55,
        r"\b(?:call|invoke|execute|trigger|run|use) (?:the )?(?:tool |function |api |action )?['\"]?"
        r"[a-z]+(?:_[a-z0-9]+)+['\"]?(?:\(| tool\b| function\b| with\b| on\b| for\b| to\b)",
    ),
    (0.45, r"\b[a-z]+(?:_[a-z0-9]+)+\(\s*[a-z_]+\s*=\s*['\"\[{\d]"),
    (0.6, r"\b(?:curl|wget)\s+(?:-\S+\s+)*['\"]?https?://\S+['\"]?\s*\|\s*(?:ba|z)?sh\b|\brm\s+-rf\s+[/~]"),
]
_EXFIL_LINK = [
    (0.75, r"!\[[^\]\n]{0,120}\]\(\s*<?https?://[^\s)]*(?:\?|&)[^\s)]*(?:\{|\}|\$|<|>|%7b|%7d|\[|\]|\+\+)"),
    (0.45, r"!\[[^\]\n]{0,120}\]\(\s*<?https?://[^\s)]*\?[^\s)]*="),
    (
        0.7,
        r"https?://\S*?(?:\{\{?\s*[\w .\-]{1,40}\}\}?|\[[a-z_ \-]{2,40}\]|<[a-z_ \-]{2,40}>|\$\{?[a-z_]\w*"
        r"|%7b\w+%7d|\+\+\w+\+\+)",
    ),
    (
        0.55,
        r"\b(?:append|add|include|insert|put|encode|concatenate|attach|embed|substitute|replace)\b[^.\n]{0,80}?"
        r"\b(?:to|in|into|at the end of|as|inside)\b[^.\n]{0,30}?\b(?:the )?(?:url|link|query(?: string)?"
        r"|(?:query |url )?parameter|image (?:url|link|source)|href|src)\b",
    ),
    (
        0.5,
        r"https?://[^\s/]*(?:webhook\.site|requestbin|pipedream\.net|ngrok|burpcollaborator|interact\.sh"
        r"|oast\.\w+|hookbin|beeceptor|pastebin\.com|transfer\.sh|requestcatcher|canarytokens)",
    ),
    (
        0.35,
        r"https?://\S+[?&](?:secret|prompt|conv|conversation|history|chat|leak|exfil|payload|pwd|password"
        r"|passwd|creds?|ssn|apikey|api_key|session|cookie|stolen|dump)=\S",
    ),
    (
        0.35,
        r"\b(?:render|display|show|include|output|embed) (?:this |the following |an? )?(?:markdown |hidden |"
        r"tracking |invisible )?(?:image|pixel)\b",
    ),
]
_ENCODE_INSTRUCTION = re.compile(
    r"\b(?:decode|base64[ -]?decode|rot13|decrypt|unescape|url-?decode|translate)\b[^.\n]{0,60}?"
    r"\b(?:and|then)\b[^.\n]{0,20}?\b(?:follow|execute|run|obey|do|apply|carry out|perform|act on|comply)\b",
    _I,
)


def _compile(specs: Iterable[tuple[float, str]]) -> list[tuple[float, re.Pattern[str]]]:
    return [(weight, re.compile(pattern, _I)) for weight, pattern in specs]


_SIGNALS: list[tuple[str, list[tuple[float, re.Pattern[str]]]]] = [
    ("instruction_override", _compile(_OVERRIDE_OTHER)),
    ("role_play", _compile(_ROLE_PLAY)),
    ("role_marker", _compile(_ROLE_MARKERS)),
    ("prompt_leak", _compile(_PROMPT_LEAK)),
    ("secrecy", _compile(_SECRECY)),
    ("addressed_to_ai", _compile(_ADDRESSED)),
    ("tool_call_syntax", _compile(_TOOL_CALL)),
    ("exfiltration_link", _compile(_EXFIL_LINK)),
]
_DATA_EXFIL_RE = _compile(_DATA_EXFIL)

# Encoded chunks
_BASE64 = re.compile(r"(?<![A-Za-z0-9+/=_\-])[A-Za-z0-9+/_\-]{16,}={0,2}(?![A-Za-z0-9+/=_\-])")
_PERCENT = re.compile(r"\S*(?:%[0-9A-Fa-f]{2}\S*){3,}")
_ENTITIES = re.compile(r"(?:&#(?:x[0-9a-f]{1,6}|\d{1,7});\s?){4,}", re.IGNORECASE)
_HEX_ESCAPES = re.compile(r"(?:\\x[0-9a-fA-F]{2}|\\u[0-9a-fA-F]{4}){4,}")
_PRINTABLE = set(range(32, 127)) | {9, 10, 13}


def _decode_base64(chunk: str) -> str | None:
    if len(chunk) < 16 or not re.search(r"[A-Z]", chunk) or not re.search(r"[a-z0-9]", chunk):
        return None
    padded = chunk + "=" * (-len(chunk) % 4)
    try:
        raw = base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        return None
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not decoded:
        return None
    printable = sum(1 for c in decoded if ord(c) in _PRINTABLE or ord(c) > 159)
    if printable / len(decoded) < 0.9 or " " not in decoded.strip():
        return None
    return decoded


def _encoded_views(text: str) -> Iterator[str]:
    """Decoded renderings of encoded chunks found in ``text`` (at most MAX_ENCODED_CHUNKS)."""
    count = 0
    for match in _BASE64.finditer(text):
        decoded = _decode_base64(match.group(0))
        if decoded is not None:
            count += 1
            yield decoded
        if count >= MAX_ENCODED_CHUNKS:
            return
    for match in _PERCENT.finditer(text):
        decoded = unquote(match.group(0))
        if decoded != match.group(0):
            count += 1
            yield decoded.replace("+", " ")
    for match in _ENTITIES.finditer(text):
        count += 1
        yield html.unescape(match.group(0))
    for match in _HEX_ESCAPES.finditer(text):
        try:
            yield match.group(0).encode("ascii").decode("unicode_escape")
        except UnicodeDecodeError:
            continue
        count += 1
        if count >= MAX_ENCODED_CHUNKS:
            return


# ---------------------------------------------------------------------------------------------------
# Scanning
# ---------------------------------------------------------------------------------------------------


def _quoted(text: str, start: int, end: int) -> bool:
    before = text[max(0, start - 2) : start].rstrip()
    return bool(before) and before[-1] in _QUOTES and any(q in text[end : end + 3] for q in _QUOTES)


def _override_weight(folded: str) -> float:
    best = 0.0
    for match in _OVERRIDE.finditer(folded):
        between = match.group(1).split()
        if any(word in _FIRST_PERSON for word in between):
            continue
        after = (match.group(2) or "").split()
        weight = 0.85 if any(word in _QUALIFIERS for word in between + after) else 0.45
        end = match.end(2) if match.group(2) and after[0] in _QUALIFIERS else match.start(2)
        if end == -1:
            end = match.end()
        if _TOPIC_SCOPED.match(folded, end):
            weight = min(weight, 0.3)
        if _quoted(folded, match.start(), end):
            weight /= 2  # mentioned, not used: "attackers write things like 'ignore your instructions'"
        best = max(best, weight)
    if _FORGET_EVERYTHING.search(folded):
        best = max(best, 0.8)
    return best


def _phrase_signals(folded: str) -> dict[str, float]:
    """Weights per flag for the phrase-level signals on an already folded text."""
    found: dict[str, float] = {}
    weight = _override_weight(folded)
    if weight:
        found["instruction_override"] = weight
    for flag, patterns in _SIGNALS:
        for w, pattern in patterns:
            if w > found.get(flag, 0.0) and pattern.search(folded):
                found[flag] = w
    for w, pattern in _DATA_EXFIL_RE:
        for match in pattern.finditer(folded):
            if _NEGATION_BEFORE.search(folded, max(0, match.start() - 40), match.start()):
                continue
            found["data_exfiltration"] = max(found.get("data_exfiltration", 0.0), w)
            break
    if _ENCODE_INSTRUCTION.search(folded):
        found["encoded_payload"] = max(found.get("encoded_payload", 0.0), 0.6)
    return found


def _combine(weights: Mapping[str, float]) -> float:
    remaining = 1.0
    for weight in weights.values():
        remaining *= 1.0 - weight
    return round(1.0 - remaining, 4)


def _merge(into: dict[str, float], other: Mapping[str, float]) -> None:
    for flag, weight in other.items():
        if weight > into.get(flag, 0.0):
            into[flag] = weight


def _scan(text: str, depth: int) -> dict[str, float]:
    found: dict[str, float] = {}
    nfkc = _FLAG_EMOJI.sub("\U0001f3f4", unicodedata.normalize("NFKC", text))

    # Hidden ASCII in Unicode tag characters: decode and rescan.
    for match in _TAG_RUN.finditer(nfkc):
        hidden = "".join(chr(ord(c) - 0xE0000) for c in match.group(0) if ord(c) != 0xE007F)
        _merge(found, _scan(hidden, depth + 1))
        found["zero_width"] = max(found.get("zero_width", 0.0), 0.6)
    nfkc = _TAG_RUN.sub("", nfkc)

    zero_width_in_words = len(_ZW_IN_WORD.findall(nfkc))
    stripped = nfkc.translate(_STRIP_INVISIBLE)
    mixed_words = len(_MIXED_SCRIPT_WORD.findall(stripped))

    mapped = stripped.translate(_HOMOGLYPH_TABLE)
    folded = _fold(mapped)
    phrases = _phrase_signals(folded)
    _merge(found, phrases)

    if zero_width_in_words:
        found["zero_width"] = max(found.get("zero_width", 0.0), 0.45 if zero_width_in_words < 3 else 0.55)
    if mixed_words:
        found["homoglyph"] = max(found.get("homoglyph", 0.0), 0.45 if mixed_words < 2 else 0.55)
    elif phrases and mapped != stripped and not _phrase_signals(_fold(stripped)):
        # Whole words written in look-alike letters only reveal themselves after mapping.
        found["homoglyph"] = max(found.get("homoglyph", 0.0), 0.55)

    # Leetspeak: only rescan the override phrases, on a copy with digits mapped back to letters.
    if _LEET_WORD.search(folded):
        leet = _LEET_WORD.sub(lambda m: m.group(0).translate(_LEET), folded)
        if leet != folded:
            weight = _override_weight(leet)
            if weight > found.get("instruction_override", 0.0):
                found["instruction_override"] = weight
                found["obfuscated_text"] = 0.4

    if depth < MAX_DECODE_DEPTH:
        for decoded in _encoded_views(stripped):
            inner = _scan(decoded, depth + 1)
            inner_score = _combine(inner)
            if inner_score >= 0.3:
                _merge(found, inner)
                found["encoded_payload"] = max(found.get("encoded_payload", 0.0), max(0.6, inner_score))
    return found


def _result(found: Mapping[str, float]) -> InjectionResult:
    if not found:
        return CLEAN
    return InjectionResult(score=min(1.0, _combine(found)), flags=tuple(sorted(found)))


def scan_injection(text: str) -> InjectionResult:
    """Score one free text for prompt-injection; flags name the signals, never the matched text."""
    if not text or not text.strip():
        return CLEAN
    return _result(_scan(text, 0))


def text_values(value: object, depth: int = 0) -> Iterator[str]:
    """Every string in a nested value (map keys included), to a depth of 32."""
    if depth > 32:
        return
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(key, str):
                yield key
            yield from text_values(item, depth + 1)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from text_values(item, depth + 1)


def scan_params(params: Mapping[str, object]) -> InjectionResult:
    """Scan every string (keys and values) in nested params: the strongest per flag over all strings."""
    found: dict[str, float] = {}
    for text in text_values(params):
        if text.strip():
            _merge(found, _scan(text, 0))
    return _result(found)
