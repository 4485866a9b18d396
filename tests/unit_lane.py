"""The unit lane (`pytest -m unit`): the tests that start no other program, by module.

Each is marked `unit` at collection (tests/conftest.py), and a test so marked fails the
moment it spawns a program (git, a registry, podman, a doit run): the list can only
hold tests that keep that promise. A new test joins by adding its name here; one that
needs a program (a git checkout, a registry) stays in the fast lane.
"""

from __future__ import annotations

UNIT: dict[str, tuple[str, ...]] = {
    "test_architecture.py": (
        "test_every_folder_is_a_layer",
        "test_no_function_takes_more_than_six_parameters",
        "test_no_import_circles",
        "test_no_import_runs_up_a_layer",
        "test_the_configuration_names_every_build_backend",
        "test_the_graph_sees_deferred_imports",
        "test_the_oci_layer_knows_no_configuration",
    ),
    "test_builders.py": (
        "test_docker_client_without_engine_is_not_buildx",
        "test_nothing_installed_says_what_to_install",
    ),
    "test_ci.py": ("test_schema_catches_a_broken_workflow",),
    "test_config_corpus.py": (
        "test_corpus_is_large_and_complete",
        "test_malformed_config",
    ),
    "test_config_inputs.py": (
        "test_alias_bomb_is_refused",
        "test_alias_inside_its_own_anchor",
        "test_dates_are_text",
        "test_deep_nesting",
        "test_empty_file",
        "test_error_at_the_end_of_a_large_file",
        "test_error_inside_merged_mapping_points_into_the_file",
        "test_expanded_values_are_not_echoed",
        "test_file_too_large",
        "test_interpolation_forms",
        "test_keys_are_never_interpolated",
        "test_long_alias_chain_is_refused",
        "test_long_number_is_refused",
        "test_merge_key_bomb_is_refused",
        "test_merge_keys_share_settings",
        "test_missing_file",
        "test_not_utf8_names_line_and_column",
        "test_other_file_name_is_shown",
        "test_symlink_out_of_the_repository",
        "test_very_deep_nesting_does_not_crash_the_parser",
    ),
    "test_container.py": (
        "test_flags",
        "test_where_the_backend_is_available",
    ),
    "test_docs.py": (
        "test_cli_page_lists_every_command_and_flag",
        "test_environment_page_lists_every_syntra_variable",
        "test_every_page_is_linked_from_the_readme_or_another_page",
        "test_readme_is_short",
        "test_relative_links_resolve",
    ),
    "test_errors.py": ("test_malformed_content_is_one_line",),
    "test_noop.py": ("test_loopback_registries_speak_plain_http",),
    "test_review_fixes.py": (
        "test_bind_volumes_stay_in_the_repository",
        "test_cargo_target_is_not_a_source",
        "test_damaged_image_cache_counts_as_absent",
        "test_init_does_not_enter_skipped_folders",
        "test_malformed_cargo_toml_is_one_line",
        "test_run_log_redacts_the_command_and_errors",
    ),
    "test_sandbox.py": ("test_load_tells_references_and_files_apart",),
    "test_showcase.py": (
        "test_docs_reference_is_current",
        "test_json_schema_accepts_the_showcase",
        "test_json_schema_rejects_unknown_keys",
    ),
    "test_testbox.py": ("test_whiteouts_and_links_stay_inside_the_image",),
    "test_untrusted.py": (
        "test_a_blob_streaming_past_its_declared_size_is_cut_off",
        "test_a_corrupt_layout_blob_is_refused",
        "test_a_deeply_nested_index_is_one_line",
        "test_a_descriptor_with_annotations_or_platform_not_an_object_is_malformed",
        "test_a_destination_that_cannot_be_written_is_a_local_file_error",
        "test_a_docker_archive_names_only_its_own_members",
        "test_a_docker_archive_of_an_index_of_indexes_is_one_line",
        "test_a_hostile_attestation_is_a_malformed_one",
        "test_a_hostile_signature_layer_is_a_malformed_one",
        "test_a_large_blob_the_registry_has_is_not_sent_again",
        "test_a_layout_blob_that_is_not_a_regular_file_is_refused",
        "test_a_layout_index_digest_that_is_a_path_is_refused",
        "test_a_manifest_digest_that_is_a_path_is_refused",
        "test_a_manifest_larger_than_4_mib_is_refused",
        "test_a_plugin_manifest_naming_a_folder_is_refused",
        "test_a_referrers_fallback_of_hostile_entries_is_one_line",
        "test_a_registry_digest_that_is_a_path_is_refused",
        "test_a_sparse_archive_member_is_refused",
        "test_a_statement_that_is_not_an_object_is_about_nothing",
        "test_a_tag_list_that_loops_is_refused",
        "test_a_v128_signature_is_refused_not_an_abort",
        "test_a_web_bundle_record_holds_a_digest",
        "test_an_archive_is_read_in_place_and_copies_back_the_same",
        "test_an_index_of_1024_entries_is_hashed_once",
        "test_an_oci_archive_with_escaping_members_is_refused",
        "test_basic_credentials_go_to_a_token_realm_elsewhere_only_over_https",
        "test_hostile_json_answers_are_one_line",
        "test_inspect_fetches_each_distinct_child_once",
        "test_one_check_confines_every_outside_name",
        "test_pull_writes_only_inside_its_folder",
        "test_registry_error_text_never_shows_the_password",
        "test_the_login_never_reaches_another_host",
        "test_verify_reads_an_index_through_its_checked_descriptors",
    ),
    "test_up.py": (
        "test_durations_have_one_parser",
        "test_services_errors_are_one_positioned_line",
        "test_showcase_compose_file_follows_the_compose_spec",
    ),
    "test_versioning.py": ("test_semver_precedence",),
    "test_web.py": (
        "test_export_names_become_identifiers_that_clash_with_nothing",
        "test_export_names_cannot_write_code_into_the_bundle",
        "test_foreign_imports_are_one_line",
        "test_the_bundle_is_the_same_bytes_every_time",
    ),
}
"""Module → its test functions in the unit lane (every parametrization of each)."""

NEEDS_GIT = frozenset(
    f"test_malformed_config[{case}]"
    for case in ("arg_template_unknown", "label_template_unknown", "tag_renders_invalid",
                 "tag_undefined")
)  # fmt: skip
"""Corpus cases whose tags or templates render the version: the plan asks git."""


def in_unit_lane(module: str, name: str) -> bool:
    """Whether test `name` (with its parametrization) of `module` is in the unit lane."""
    return name.split("[", 1)[0] in UNIT.get(module, ()) and name not in NEEDS_GIT
