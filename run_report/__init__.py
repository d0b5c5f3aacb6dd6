"""run_report"""
