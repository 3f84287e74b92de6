import AstraDist
print("astra-dist")
