"""sigforge's compiler: `.sig` files in, a typed Python package out.

The pipeline is one direction: grammar -> AST (:mod:`.ast`, :mod:`.parse`) -> semantic
checks (:mod:`.check`) -> signature extension per module kind (:mod:`.extend`) -> IR
(:mod:`.ir`) -> Jinja templates and black (:mod:`.render`) -> ``{path: content}``
(:mod:`.pipeline`) -> disk or a diff (:mod:`.write`).
"""
