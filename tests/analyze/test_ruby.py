"""Ruby facet: gems from generated specifications inside real .apk files."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from pkgfiles import analyze, capture_view, text_file

from qackage.analyze.ruby import MAX_REQUIRABLES, GemSpec, RubyFacet, parse_gemspec
from qackage.apk.writer import PlannedFile
from qackage.model import Facts, RubyGem

GEMS = "usr/lib/ruby/gems/3.4.0"

REDIS_SPEC = """\
# -*- encoding: utf-8 -*-
# stub: redis 5.0.6 ruby lib

Gem::Specification.new do |s|
  s.name = "redis".freeze
  s.version = "5.0.6".freeze

  s.required_rubygems_version = Gem::Requirement.new(">= 0".freeze) if s.respond_to? :required_rubygems_version=
  s.metadata = { "changelog_uri" => "https://example.invalid/CHANGELOG.md" } if s.respond_to? :metadata=
  s.require_paths = ["lib".freeze]
  s.authors = ["A. Maintainer".freeze, "B. Maintainer".freeze]
  s.date = "2023-06-07"
  s.description = "    A Ruby client that tries to match the protocol \\"closely\\".\\n".freeze
  s.email = ["maintainers@example.invalid".freeze]
  s.homepage = "https://example.invalid/redis-rb".freeze
  s.licenses = ["MIT".freeze]
  s.required_ruby_version = Gem::Requirement.new(">= 2.5.0".freeze)
  s.rubygems_version = "3.5.9".freeze
  s.summary = "A Ruby client library for Redis".freeze

  s.installed_by_version = "3.5.9" if s.respond_to? :installed_by_version

  s.specification_version = 4

  s.add_runtime_dependency(%q<redis-client>.freeze, [">= 0.9.0".freeze])
end
"""

JSON_SPEC = """\
# -*- encoding: utf-8 -*-
# stub: json 2.7.1 ruby lib
# stub: ext/json/ext/generator/extconf.rb ext/json/ext/parser/extconf.rb

Gem::Specification.new do |s|
  s.name = "json".freeze
  s.version = "2.7.1".freeze

  s.require_paths = ["lib".freeze]
  s.extensions = ["ext/json/ext/generator/extconf.rb".freeze, "ext/json/ext/parser/extconf.rb".freeze]
  s.summary = "JSON Implementation for Ruby".freeze
end
"""

# An older RubyGems wrote %q{} literals and no .freeze; this one also ships a command.
RAKE_SPEC = """\
# -*- encoding: utf-8 -*-

Gem::Specification.new do |s|
  s.name = %q{rake}
  s.version = "13.1.0"
  s.require_paths = [%q{lib}]
  s.bindir = %q{exe}
  s.executables = [%q{rake}]
end
"""

PLATFORM_SPEC = """\
# -*- encoding: utf-8 -*-
# stub: nokogiri 1.16.0 x86_64-linux lib

Gem::Specification.new do |s|
  s.name = "nokogiri".freeze
  s.version = "1.16.0".freeze
  s.platform = "x86_64-linux".freeze
  s.require_paths = ["lib".freeze]
  s.executables = ["nokogiri".freeze]
end
"""


def _gem_files() -> list[PlannedFile]:
    redis = f"{GEMS}/gems/redis-5.0.6"
    json = f"{GEMS}/gems/json-2.7.1"
    rake = f"{GEMS}/gems/rake-13.1.0"
    noko = f"{GEMS}/gems/nokogiri-1.16.0-x86_64-linux"
    ext = f"{GEMS}/extensions/x86_64-linux/3.4.0/json-2.7.1"
    return [
        text_file(f"{GEMS}/specifications/redis-5.0.6.gemspec", REDIS_SPEC),
        text_file(f"{redis}/lib/redis.rb", "require 'redis/commands'\n"),
        text_file(f"{redis}/lib/redis/commands.rb", ""),
        text_file(f"{redis}/lib/redis/commands/keys.rb", ""),
        text_file(f"{redis}/lib/redis/version.rb", ""),
        text_file(f"{redis}/README.md", ""),
        text_file(f"{redis}/CHANGELOG.rb.txt", ""),
        text_file(f"{GEMS}/cache/redis-5.0.6.gem", "not kept"),
        text_file(f"{GEMS}/specifications/default/json-2.7.1.gemspec", JSON_SPEC),
        text_file(f"{json}/lib/json.rb", ""),
        text_file(f"{json}/lib/json/common.rb", ""),
        text_file(f"{json}/ext/json/ext/parser/parser.c", ""),
        PlannedFile(f"{ext}/json/ext/parser.so", data=b"\x7fELF not really", mode=0o755),
        text_file(f"{ext}/gem.build_complete", ""),
        text_file(f"{GEMS}/specifications/rake-13.1.0.gemspec", RAKE_SPEC),
        text_file(f"{rake}/lib/rake.rb", ""),
        text_file(f"{rake}/exe/rake", "#!/usr/bin/env ruby\n", mode=0o755),
        text_file(f"{GEMS}/specifications/nokogiri-1.16.0-x86_64-linux.gemspec", PLATFORM_SPEC),
        text_file(f"{noko}/lib/nokogiri.rb", ""),
        text_file(f"{noko}/lib/nokogiri/xml.rb", ""),
        # a spec outside gems/<api>/specifications is not an installed gem
        text_file("usr/share/doc/redis/redis.gemspec", REDIS_SPEC),
    ]


def test_installed_gems(tmp_path: Path) -> None:
    facts = analyze(tmp_path, RubyFacet(), _gem_files())
    assert facts == Facts(
        ruby_gems=(
            RubyGem(
                name="json",
                version="2.7.1",
                path=f"{GEMS}/specifications/default/json-2.7.1.gemspec",
                ruby_api="3.4.0",
                require_paths=("lib",),
                requirables=("json", "json/common", "json/ext/parser"),
            ),
            RubyGem(
                name="nokogiri",
                version="1.16.0",
                path=f"{GEMS}/specifications/nokogiri-1.16.0-x86_64-linux.gemspec",
                ruby_api="3.4.0",
                executables=("nokogiri",),
                requirables=("nokogiri", "nokogiri/xml"),
            ),
            RubyGem(
                name="rake",
                version="13.1.0",
                path=f"{GEMS}/specifications/rake-13.1.0.gemspec",
                ruby_api="3.4.0",
                executables=("rake",),
                requirables=("rake",),
            ),
            RubyGem(
                name="redis",
                version="5.0.6",
                path=f"{GEMS}/specifications/redis-5.0.6.gemspec",
                ruby_api="3.4.0",
                requirables=("redis", "redis/commands", "redis/version", "redis/commands/keys"),
            ),
        )
    )


def test_capture_keeps_only_gemspecs(tmp_path: Path) -> None:
    view = capture_view(tmp_path, [RubyFacet()], _gem_files())
    assert sorted(view.contents) == [
        f"{GEMS}/specifications/default/json-2.7.1.gemspec",
        f"{GEMS}/specifications/nokogiri-1.16.0-x86_64-linux.gemspec",
        f"{GEMS}/specifications/rake-13.1.0.gemspec",
        f"{GEMS}/specifications/redis-5.0.6.gemspec",
    ]


def test_requirables_are_capped_top_level_first(tmp_path: Path) -> None:
    gem = f"{GEMS}/gems/aws-sdk-core-3.190.0"
    spec = '# stub: aws-sdk-core 3.190.0 ruby lib\x00vendor/lib\ns.name = "aws-sdk-core".freeze\n'
    files = [text_file(f"{GEMS}/specifications/aws-sdk-core-3.190.0.gemspec", spec)]
    files += [text_file(f"{gem}/lib/aws-sdk-core/deep/m{n:03d}.rb", "") for n in range(80)]
    files += [text_file(f"{gem}/lib/aws-sdk-core.rb", ""), text_file(f"{gem}/vendor/lib/jmespath.rb", "")]
    (found,) = analyze(tmp_path, RubyFacet(), files).ruby_gems
    assert found.require_paths == ("lib", "vendor/lib")
    assert len(found.requirables) == MAX_REQUIRABLES
    assert found.requirables[:3] == ("aws-sdk-core", "jmespath", "aws-sdk-core/deep/m000")
    assert found.requirables[-1] == f"aws-sdk-core/deep/m{MAX_REQUIRABLES - 3:03d}"


def test_hostile_gemspec_falls_back_to_the_file_name(tmp_path: Path) -> None:
    files = [
        PlannedFile(f"{GEMS}/specifications/weird-0.1.2.gemspec", data=bytes(range(256)) * 4),
        text_file(
            f"{GEMS}/specifications/escape-1.0.gemspec",
            's.require_paths = ["../../../../etc".freeze, "/abs".freeze, "lib".freeze]\ns.name = "\n',
        ),
        text_file(f"{GEMS}/gems/escape-1.0/lib/escape.rb", ""),
        text_file(f"{GEMS}/specifications/noversion.gemspec", "s.executables = []\n"),
    ]
    facts = analyze(tmp_path, RubyFacet(), files)
    summary = [(g.name, g.version, g.require_paths, g.executables, g.requirables) for g in facts.ruby_gems]
    assert summary == [
        ("escape", "1.0", ("lib",), (), ("escape",)),
        ("noversion", "", ("lib",), (), ()),
        ("weird", "0.1.2", ("lib",), (), ()),
    ]


def test_parse_gemspec_prefers_assignments_to_the_stub() -> None:
    text = '# stub: old 0.1 ruby lib\x00ext\nGem::Specification.new do |spec|\n  spec.version = "0.2".freeze\nend\n'
    assert parse_gemspec(text) == GemSpec(name="old", version="0.2", require_paths=("lib", "ext"))
    assert parse_gemspec("") == GemSpec()


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet=st.sampled_from("s.name= version require_paths executables\"'%q{}[],\\\n\x00#stub:")))
def test_parse_gemspec_never_raises(text: str) -> None:
    spec = parse_gemspec(text)
    assert spec.name is None or "\n" not in spec.name
