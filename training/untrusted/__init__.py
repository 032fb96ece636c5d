"""Files from outside: checks on any file a user names (checks), pickles scanned before torch reads them
(pickle_scan) and read in a child process (sandboxed_load), image headers costed before decoding (decode_cost),
students' tutorial generators (importers) and uploaded photos (photos)."""
