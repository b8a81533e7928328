# Where the corpora are. IAM is registration-only (https://fki.tic.heia-fr.ch/databases/iam-handwriting-database):
# download lines.tgz and ascii.tgz, unpack them into one directory (it then holds ascii/lines.txt and
# lines/a01/a01-000u/a01-000u-00.png ...) and set IAM to that directory, here or in the environment.
IAM=${IAM:-}
