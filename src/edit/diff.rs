//! The difference staged edits make, table by table.
