# cmake -DFROM=seeds -DTO=work -DARTIFACTS=dir -P copy-corpus.cmake
# Replaces TO with a fresh copy of FROM, so each smoke run starts from the committed seeds.
file(REMOVE_RECURSE "${TO}")
file(COPY "${FROM}/" DESTINATION "${TO}")
file(MAKE_DIRECTORY "${ARTIFACTS}")
