"""`digest publish`: the static web archive of sent and public issues — each issue's web version at the
address its emails promise, the images they load, an index and an Atom feed — written atomically."""
