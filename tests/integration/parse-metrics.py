#!/usr/bin/python3
# Reads a /metrics page on stdin with the Prometheus Python client's own text-format
# parser (Debian's python3-prometheus-client), which raises on any malformed line, and
# prints its families as JSON: [{name, type, help, samples: [{name, labels, value}]}].
import json
import sys

from prometheus_client.parser import text_string_to_metric_families

families = []
for family in text_string_to_metric_families(sys.stdin.read()):
    families.append({
        "name": family.name, "type": family.type, "help": family.documentation,
        "samples": [{"name": s.name, "labels": s.labels, "value": s.value} for s in family.samples],
    })
json.dump(families, sys.stdout)
