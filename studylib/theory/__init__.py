"""The analytic counter-example of the paper's section 2 and appendix D (numeric and symbolic)."""
