"""melange's file format, read the way melange reads it.

`config` parses a package file (or a bare ``test:`` fragment) into frozen data;
`stanza` parses pipeline steps and ``test:`` blocks into `qackage.model` objects;
`substitution` is the one ``${{...}}`` implementation and the variables a test can
name; `conditions` evaluates ``if:``; `goregexp` runs ``var-transforms``; `yamltext`
loads YAML with scalars kept as text; `fields` reads typed values with YAML paths.
"""
