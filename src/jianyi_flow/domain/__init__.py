"""The domain layer: what a suggestion is and the rules it follows, with no storage or service.

Suggestions, events and actors (:mod:`.model`), the one workflow definition
(:mod:`.workflow`), time (:mod:`.clock`), the business calendar and statutory deadlines
(:mod:`.calendar`, :mod:`.deadlines`), the tamper-evident history (:mod:`.history`),
campaigns (:mod:`.campaign`) and input rules (:mod:`.validation`).
"""
