"""Pretend to translate a text (the first step of the flow f/demo/translate).

A real step would call a translation service; this one swaps a few words, so that the person who
reviews the translation in the next step has something to look at.
"""

WORDS = {"hello": "bonjour", "world": "monde", "thanks": "merci", "the": "le", "site": "site", "is": "est"}


def main(text: str, language: str = "fr") -> dict[str, str]:
    translated = " ".join(WORDS.get(word.lower(), word) for word in text.split())
    return {"source": text, "translated": translated, "language": language}
