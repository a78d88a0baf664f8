"""``watchkeeper demo``: the whole loop on the local lab (:mod:`.closed_loop`), or a recorded alert
storm replayed through a live server (:mod:`.storm`)."""
