# Where the corpus is: three folders of page images with their PAGE XML (a Transkribus export:
# images + page/<image stem>.xml), one per set. Set them here or in the environment, or pass
# --train_dir/--valid_dir/--test_dir to local/data.sh (./run.sh --local_data_opts "...").
PAGEXML_TRAIN=${PAGEXML_TRAIN:-}
PAGEXML_VALID=${PAGEXML_VALID:-}
PAGEXML_TEST=${PAGEXML_TEST:-}
